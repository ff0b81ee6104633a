#!/usr/bin/env bash
# The Docker engines buildkit's image tests run against. Idempotent: run it again and it
# changes nothing that is already in place (a running daemon is never restarted).
#
#   1. Debian 13's docker.io (26.1), containerd (1.7) and docker-buildx (0.13) on this
#      Debian 12 machine: the engine with BuildKit built in, and buildx. Debian 12's own
#      engine (20.10) has neither, so the release path users take (buildx) could not run.
#      Only these three come from trixie (apt pin 100 for the rest of trixie, and their
#      names on the command line); runc stays Debian 12's: trixie's needs glibc 2.38 and
#      would drag a libc upgrade in.
#   2. Two daemons, because the two image stores behave differently and users have both:
#        classic     /var/run/docker.sock, the overlay2 image store (the default of every
#                    engine installed before Docker 29, and of most CI runners)
#        containerd  unix:///run/buildkit-engines/containerd-store.sock, the containerd
#                    image store ("containerd-snapshotter"), the default of new installs;
#                    only here can buildx's `docker` driver build multi-platform images
#      The classic one stays the default socket: everything else on the machine (and the
#      orchestrator's tests) uses it, and this script never restarts it. The containerd
#      one gets its own data-root, exec-root, pidfile, socket and bridge, and no
#      "default-address-pools": a daemon deletes the interface docker0 whatever its own
#      bridge is called, when it restarts with a default-bridge network in its state and
#      either "bridge": "none" or address pools set (moby's configureNetworking) — that
#      took docker0 from under the classic daemon on a machine prepared twice. Its own
#      containerd namespaces (on a host with a system containerd both daemons would
#      otherwise keep their images and containers in its `moby` namespace), and
#      iptables off: a starting daemon rebuilds the DOCKER chains, which would drop the
#      other daemon's port mappings; published ports work through docker-proxy instead.
#      Its configuration is written when it is started: a change here applies at the next
#      fresh start of that daemon (a running one is left alone).
#
# On a machine whose default engine already answers and is not Debian 12 (a GitHub
# runner, Docker Desktop) step 1 changes nothing; step 2 starts the containerd daemon
# wherever dockerd 24 or newer is installed.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/lib.sh"

CS_DIR=/run/buildkit-engines
CS_SOCKET=$CS_DIR/containerd-store.sock
CS_BRIDGE=bk-cs0
CS_GATEWAY=10.213.0.1/24
CS_NAMESPACE=buildkit-cs  # containerd namespaces of its own: "moby" is the other daemon's
TRIXIE_PACKAGES=(docker.io containerd docker-buildx)

on_debian_12() {
  [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] \
    && [ "${VERSION_CODENAME:-}" = bookworm ]
}

trixie_engine_installed() {
  local status version
  status=$(dpkg-query -W -f='${db:Status-Status}' docker.io 2>/dev/null || true)
  version=$(dpkg-query -W -f='${Version}' docker.io 2>/dev/null || true)
  [ "$status" = installed ] && dpkg --compare-versions "$version" ge 26 \
    && dpkg -s containerd docker-buildx >/dev/null 2>&1 && command -v docker >/dev/null
}

install_trixie_engine() {
  if trixie_engine_installed; then
    log "docker.io $(dpkg-query -W -f='${Version}' docker.io), buildx from Debian 13 are installed"
    return 0
  fi
  local mirror
  mirror=$(debian_mirror)
  if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    log "adding Debian 13 (trixie) as a source, pinned to 100: only named packages come from it"
    cat > /etc/apt/sources.list.d/trixie.sources <<SOURCES
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    rm -f "$STATE/apt-updated"
  fi
  if [ ! -f /etc/apt/preferences.d/trixie-engine ]; then
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' \
      > /etc/apt/preferences.d/trixie-engine
  fi
  apt_updated
  # Debian 13 ships the docker CLI apart (docker-cli, a recommendation of docker.io):
  # the machines have a newer client on PATH; a machine without one gets trixie's.
  command -v docker >/dev/null || TRIXIE_PACKAGES+=(docker-cli)
  log "installing ${TRIXIE_PACKAGES[*]} from trixie (runc stays Debian 12's)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${TRIXIE_PACKAGES[@]/%//trixie}" >/dev/null
}

start_classic_daemon() {
  if docker info >/dev/null 2>&1; then
    log "the default engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null)," \
      "$(docker info -f '{{.Driver}}' 2>/dev/null)); leaving it as it is"
    return 0
  fi
  command -v dockerd >/dev/null || apt_install docker.io
  log "starting the default dockerd, classic image store (log: /var/log/dockerd.log)"
  # The local registry doubles as a mirror of Docker Hub: pulls of python:3.11-slim are
  # answered from it (see base-images.sh), as an ordinary machine pulls them from the internet.
  setsid nohup dockerd --storage-driver=overlay2 --registry-mirror "http://$REGISTRY_ADDR" \
    >/var/log/dockerd.log 2>&1 < /dev/null &
  wait_for 60 "dockerd" docker info
}

containerd_store_config() {  # the containerd-store daemon's daemon.json
  cat <<JSON
{
  "features": {"containerd-snapshotter": true},
  "hosts": ["unix://$CS_SOCKET"],
  "data-root": "$STATE/containerd-store",
  "exec-root": "$CS_DIR/exec",
  "pidfile": "$CS_DIR/containerd-store.pid",
  "containerd-namespace": "$CS_NAMESPACE",
  "containerd-plugins-namespace": "$CS_NAMESPACE-plugins",
  "bridge": "$CS_BRIDGE",
  "iptables": false,
  "ip-masq": false,
  "registry-mirrors": ["http://$REGISTRY_ADDR"]
}
JSON
}

containerd_daemon_up() { docker -H "unix://$CS_SOCKET" info >/dev/null 2>&1; }

start_containerd_daemon() {
  if containerd_daemon_up; then
    log "the containerd-store engine answers on unix://$CS_SOCKET"
    return 0
  fi
  local version
  version=$(dockerd --version 2>/dev/null | sed -E 's/^Docker version ([0-9]+).*/\1/' || true)
  if [ -z "$version" ] || [ "$version" -lt 24 ]; then
    log "warning: dockerd ${version:-missing} has no containerd image store; not starting one"
    return 0
  fi
  mkdir -p "$CS_DIR" "$STATE/containerd-store"
  if ! ip link show "$CS_BRIDGE" >/dev/null 2>&1; then
    ip link add name "$CS_BRIDGE" type bridge
    ip addr add "$CS_GATEWAY" dev "$CS_BRIDGE"
  fi
  ip link set "$CS_BRIDGE" up
  containerd_store_config > "$STATE/containerd-store.json"
  dockerd --validate --config-file "$STATE/containerd-store.json" >/dev/null \
    || { log "dockerd rejects $STATE/containerd-store.json (see above)"; return 1; }
  log "starting a second dockerd with the containerd image store on unix://$CS_SOCKET" \
    "(log: /var/log/dockerd-containerd-store.log)"
  setsid nohup dockerd --config-file "$STATE/containerd-store.json" \
    >/var/log/dockerd-containerd-store.log 2>&1 < /dev/null &
  wait_for 60 "the containerd-store dockerd" containerd_daemon_up
  docker -H "unix://$CS_SOCKET" info -f '{{.DriverStatus}}' | grep -q containerd.snapshotter \
    || { log "the second dockerd does not use the containerd image store"; return 1; }
}

default_bridge_present() {  # the default engine's containers attach to this interface
  local name
  [ -e /var/run/docker.pid ] && command -v ip >/dev/null || return 0  # not a local engine
  name=$(docker network inspect bridge \
    -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  [ -z "$name" ] && return 0  # a daemon without a default bridge
  ip link show "$name" >/dev/null 2>&1 && return 0
  log "the default engine's bridge $name is gone, so none of its containers can start;" \
    "restart that dockerd (kill \$(cat /var/run/docker.pid), then run this script again)"
  return 1
}

if [ "${1:-}" = --print-containerd-store-config ]; then  # for tests: what it would start
  containerd_store_config
  exit 0
fi
if on_debian_12; then
  install_trixie_engine
fi
start_classic_daemon
start_containerd_daemon
default_bridge_present
if docker buildx version >/dev/null 2>&1; then
  log "buildx: $(docker buildx version)"
else
  log "warning: docker buildx does not answer; the buildx backend's tests cannot run"
fi
