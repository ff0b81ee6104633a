# claude-code: Claude Code with mcp-wrapper (optional: --claude-image). Health on 8080.
# Built by buildkit from build/image-context/claude-code/: <os>-<arch>/opt/mcp-wrapper/
# holds mcp-wrapper's exact wheel installed for that platform (claude-agent entrypoint),
# claude-<os>-<arch>/claude the native Claude Code binary fetched from npm, mcp.json the
# MCP config that points Claude Code at toolman through mcp-wrapper. The build runs nothing.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TARGETOS
ARG TARGETARCH
# Set by --debug: Python's development mode and debug logs.
ARG PYTHONDEVMODE=
ARG LOG_LEVEL=info
ARG DEBUG=
# <os>-<arch>/ is shaped like the image's root (opt/<image>/...), every directory with the
# commit's time: copied to / so that /opt and its subdirectory carry that time, not the build's.
COPY ${TARGETOS}-${TARGETARCH}/ /
COPY claude-${TARGETOS}-${TARGETARCH}/claude /usr/local/bin/claude
COPY mcp.json /etc/claude-code/mcp.json
COPY --chown=10001:10001 home/ /home/agent/
COPY --chown=10001:10001 workspace/ /workspace/
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
