#!/usr/bin/env bash
# The Kubernetes tools the orchestrator's tests use: Debian 13's kustomize (the tests
# build deploy/ with it and validate what it prints). Idempotent: an installed kustomize
# is left as it is. No Kubernetes API server is installed (none is packaged); the
# controller's tests run against kmock's emulator, a Python test dependency.
#
# kustomize comes from trixie by name, like the engine in engines.sh: the trixie source
# is pinned to 100, so nothing else is taken from it.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/lib.sh"

if command -v kustomize >/dev/null 2>&1; then
  log "kustomize $(kustomize version 2>/dev/null) is installed"
  exit 0
fi
trixie_source
apt_updated
log "installing kustomize from trixie"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  kustomize/trixie >/dev/null
log "kustomize $(kustomize version 2>/dev/null) installed"
