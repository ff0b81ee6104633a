# claude-code: Claude Code with mcp-wrapper (optional: --claude-image). Health on 8080.
# Built by buildkit from build/image-context/claude-code/: <os>-<arch>/opt/mcp-wrapper/
# holds mcp-wrapper's exact wheel installed for that platform (claude-agent entrypoint),
# <os>-<arch>/usr/local/bin/claude the native Claude Code binary fetched from npm,
# <os>-<arch>/etc/claude-code/mcp.json the MCP config that points Claude Code at toolman
# through mcp-wrapper. The build runs nothing.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TARGETOS
ARG TARGETARCH
# Set by --debug: Python's development mode and debug logs.
ARG PYTHONDEVMODE=
ARG LOG_LEVEL=info
ARG DEBUG=
# user-owned/ holds the directories the agent's user owns (/home/agent, /workspace:
# `user_dirs` in [tool.buildkit.claude_image]), shaped like the image's root; <os>-<arch>/
# holds the install tree (opt/mcp-wrapper/), usr/local/bin/claude, etc/claude-code/mcp.json
# and every parent of those directories, root's. Both are copied to /, user-owned/ first:
# every directory in either layer comes from the context with the commit's time, never with
# the time COPY would create it at, and the parents the first COPY chowns are root's again.
COPY --chown=10001:10001 user-owned/ /
COPY ${TARGETOS}-${TARGETARCH}/ /
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
