# Helpers shared by the machine-preparation scripts (sourced, not run).
# shellcheck shell=bash

STATE=${BUILDKIT_MACHINE_DIR:-/var/lib/buildkit-machine}
REGISTRY_ADDR=${BUILDKIT_LOCAL_REGISTRY:-127.0.0.1:5000}
mkdir -p "$STATE"

log() { printf '[prepare-machine] %s\n' "$*" >&2; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "timed out after ${limit}s waiting for $what"; return 1
}

apt_updated() {  # one `apt-get update` per machine (and again after a new source)
  if [ ! -f "$STATE/apt-updated" ]; then
    apt-get update -q >/dev/null
    touch "$STATE/apt-updated"
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt_updated
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

registry_up() { curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

debian_mirror() {  # the Debian archive this machine's apt uses (deb.debian.org if unknown)
  local mirror
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

require_all() {  # BUILDKIT_REQUIRE_ALL is on (CI): what is missing fails instead of warning
  local value=${BUILDKIT_REQUIRE_ALL:-}
  value=${value//[[:space:]]/}
  case "${value,,}" in 1|true|yes|on) return 0 ;; *) return 1 ;; esac  # as buildkit.options
}

trixie_source() {  # Debian 13 as an apt source, pinned to 100: only named packages come from it
  if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    log "adding Debian 13 (trixie) as a source, pinned to 100"
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
      "$(debian_mirror)" /usr/share/keyrings/debian-archive-keyring.gpg \
      > /etc/apt/sources.list.d/trixie.sources
    rm -f "$STATE/apt-updated"
  fi
  if [ ! -f /etc/apt/preferences.d/trixie-engine ]; then
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' \
      > /etc/apt/preferences.d/trixie-engine
  fi
}
