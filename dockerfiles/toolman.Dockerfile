# toolman: MCP gateway sidecar with tool filtering and per-agent access control (port 3000, /mcp).
# Built by buildkit (`nox -s build_all`, `python -m buildkit images`) from
# build/image-context/<service>/: trees-<digest>/<os>-<arch>/opt/<image>/ holds the exact
# wheel of the wheel stage (sha256-checked) with its dependencies, installed on the host for
# that platform. The build runs nothing, so one stage is enough and linux/arm64 needs no
# emulation to build.
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
# <os>-<arch>/ is shaped like the image's root (opt/<image>/...), every directory with the
# commit's time: copied to / so that /opt and its subdirectory carry that time, not the build's.
COPY ${IMAGE_TREES}/${TARGETOS}-${TARGETARCH}/ /
ENV PATH=/opt/toolman/bin:$PATH \
    PYTHONPATH=/opt/toolman \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONDEVMODE=${PYTHONDEVMODE} \
    TOOLMAN_HOST=0.0.0.0 \
    TOOLMAN_PORT=3000 \
    TOOLMAN_LOG_LEVEL=${LOG_LEVEL}
EXPOSE 3000
# A real request to /health: it fails when the service is down or unhealthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('TOOLMAN_PORT', '3000'), timeout=2)"]
USER 10001:10001
ENTRYPOINT ["toolman"]
