# orchestrator: the platform's task API and controller (port 8080).
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
 && /opt/venv/bin/orchestrator --version

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
    ORCHESTRATOR_HOST=0.0.0.0 \
    ORCHESTRATOR_PORT=8080 \
    ORCHESTRATOR_LOG_LEVEL=${LOG_LEVEL}
EXPOSE 8080
# A real request to /health: it fails when the service is down or unhealthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ORCHESTRATOR_PORT', '8080'), timeout=2)"]
USER 10001:10001
ENTRYPOINT ["orchestrator"]
