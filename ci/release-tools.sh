#!/usr/bin/env bash
# Tools of the release path buildkit's tests run: cosign (signatures and attestations of
# pushed images, `--sign` and `python -m buildkit verify`). Debian 12 has no cosign;
# Debian 13's 2.5 needs only libc6 >= 2.34 and runs here. It comes from trixie, which
# ci/engines.sh added as a source pinned to 100 (only what is named comes from it).
# Idempotent: an installed cosign 2.x is left as it is.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/lib.sh"

cosign_installed() {  # Debian's build reports GitVersion "devel": ask its package
  command -v cosign >/dev/null && cosign version >/dev/null 2>&1 || return 1
  local version
  version=$(dpkg-query -W -f='${Version}' cosign 2>/dev/null || echo 2)
  dpkg --compare-versions "$version" ge 2
}

if cosign_installed; then
  log "cosign $(dpkg-query -W -f='${Version}' cosign 2>/dev/null || echo '(not from a package)') is installed"
  exit 0
fi
if [ -f /etc/apt/sources.list.d/trixie.sources ]; then
  apt_updated
  log "installing cosign from trixie"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    cosign/trixie >/dev/null
else
  apt_install cosign  # a Debian or Ubuntu that packages it itself
fi
cosign_installed || { log "cosign 2.x is not usable after installing it"; exit 1; }
