# mcp-wrapper: stdio <-> Streamable HTTP MCP forwarder for agent containers.
# Built by buildkit (`nox -s build_all`) from build/image-context/: the exact wheel of the
# wheel stage (checked by sha256) plus a wheelhouse of its dependencies; no network needed.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS install
ARG SERVICE_WHEEL
ARG SERVICE_WHEEL_SHA256
COPY wheels/ /wheels/
# A throw-away pip installs into a venv that has none, so the image carries no pip.
RUN test -n "$SERVICE_WHEEL" \
 && echo "${SERVICE_WHEEL_SHA256}  /wheels/${SERVICE_WHEEL}" | sha256sum -c - \
 && python3 -m venv /opt/pip \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/pip/bin/pip --python /opt/venv/bin/python install --no-index --no-cache-dir \
      --disable-pip-version-check --find-links /wheels "/wheels/${SERVICE_WHEEL}" \
 && /opt/venv/bin/mcp-wrapper --version

FROM ${BASE_IMAGE}
# Set by --debug: Python's development mode and debug logs.
ARG PYTHONDEVMODE=
ARG LOG_LEVEL=info
ARG DEBUG=
COPY --from=install /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONDEVMODE=${PYTHONDEVMODE} \
    MCP_WRAPPER_DEBUG=${DEBUG}
USER 10001:10001
ENTRYPOINT ["mcp-wrapper"]
