# mcp-wrapper: stdio <-> Streamable HTTP MCP forwarder for agent containers.
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
ENV PATH=/opt/mcp-wrapper/bin:$PATH \
    PYTHONPATH=/opt/mcp-wrapper \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONDEVMODE=${PYTHONDEVMODE} \
    MCP_WRAPPER_DEBUG=${DEBUG}
USER 10001:10001
ENTRYPOINT ["mcp-wrapper"]
