# orchestrator: the platform's task API and controller (port 8080).
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
# <os>-<arch>/ holds the install tree (opt/orchestrator/), shaped like the image's root;
# user-owned.tar the directory the service's user owns (/var/lib/orchestrator, the state:
# tasks.db and kept logs; a named volume mounted there takes that owner: `user_dirs` in
# [tool.buildkit]), 10001's, and its parents, root's. ADD unpacks it with those owners.
# Every directory in either layer comes from the context with the commit's time, never
# with the time a builder would create it at (buildkit/deps/image_root.py says why so).
COPY ${IMAGE_TREES}/${TARGETOS}-${TARGETARCH}/ /
ADD ${IMAGE_TREES}/user-owned.tar /
ENV PATH=/opt/orchestrator/bin:$PATH \
    PYTHONPATH=/opt/orchestrator \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONDEVMODE=${PYTHONDEVMODE} \
    ORCHESTRATOR_HOST=0.0.0.0 \
    ORCHESTRATOR_PORT=8080 \
    ORCHESTRATOR_LOG_LEVEL=${LOG_LEVEL}
EXPOSE 8080
# A real request to /health: it fails when the service is down or unhealthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ORCHESTRATOR_PORT', '8080'), timeout=2)"]
USER 10001:10001
ENTRYPOINT ["orchestrator"]
CMD ["serve"]
