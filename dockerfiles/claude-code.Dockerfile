# claude-code: Claude Code with mcp-wrapper (optional: --claude-image). Health on 8080.
# Built by buildkit from build/image-context/claude-code/trees-<digest>/: <os>-<arch>/opt/
# mcp-wrapper/ holds mcp-wrapper's exact wheel installed for that platform (claude-agent
# entrypoint), <os>-<arch>/usr/local/bin/claude the native Claude Code binary fetched from npm,
# <os>-<arch>/etc/claude-code/mcp.json the MCP config that points Claude Code at toolman
# through mcp-wrapper. The build runs nothing.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TARGETOS
ARG TARGETARCH
# trees-<digest>/: the context's directory that holds the trees below, new whenever they change
# (BuildKit keeps each builder's last context and re-sends only what it judges changed)
ARG IMAGE_TREES
# Set by --debug: Python's development mode and debug logs.
ARG PYTHONDEVMODE=
ARG LOG_LEVEL=info
ARG DEBUG=
# <os>-<arch>/ holds the install tree (opt/mcp-wrapper/), usr/local/bin/claude and
# etc/claude-code/mcp.json, shaped like the image's root; user-owned.tar the directories the
# agent's user owns (/home/agent, /workspace: `user_dirs` in [tool.buildkit.claude_image]),
# 10001's, and their parents, root's. ADD unpacks it with those owners. Every directory in
# either layer comes from the context with the commit's time, never with the time a builder
# would create it at (buildkit/deps/image_root.py says why so).
COPY ${IMAGE_TREES}/${TARGETOS}-${TARGETARCH}/ /
ADD ${IMAGE_TREES}/user-owned.tar /
ENV PATH=/opt/mcp-wrapper/bin:$PATH \
    PYTHONPATH=/opt/mcp-wrapper \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONDEVMODE=${PYTHONDEVMODE} \
    HOME=/home/agent \
    DISABLE_AUTOUPDATER=1 \
    MCP_TOOLMAN_SERVER_URL=http://localhost:3000/mcp \
    MCP_WRAPPER_DEBUG=${DEBUG} \
    CLAUDE_AGENT_PORT=8080 \
    CLAUDE_AGENT_MCP_CONFIG=/etc/claude-code/mcp.json
EXPOSE 8080
# A real request to /health: 503 when the Claude Code binary does not run.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CLAUDE_AGENT_PORT', '8080'), timeout=2)"]
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["claude-agent"]
CMD ["serve"]
