#!/usr/bin/env bash
# Make this machine ready for buildkit's image tests. Idempotent: every step checks
# first and does nothing when its part is already there.
#
#   1. a Docker engine         (installs Debian's docker.io and starts dockerd if none answers)
#   2. a registry on 127.0.0.1:5000   (Debian's docker-registry, the CNCF distribution)
#   3. QEMU user emulation      (binfmt_misc + qemu-user-static, for linux/arm64 RUN steps)
#   4. base images              (python:3.11-slim for amd64 and arm64; made with debootstrap
#                                when they cannot be pulled, served through the local registry
#                                as a registry mirror so `FROM python:3.11-slim` resolves)
#   5. real MCP servers for the service tests (ci/install-mcp-peers.sh)
#
# On a machine whose engine already answers (a GitHub runner, Docker Desktop) steps 1 and
# 4 change nothing: that engine can pull the real base images.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${BUILDKIT_MACHINE_DIR:-/var/lib/buildkit-machine}
REGISTRY_ADDR=${BUILDKIT_LOCAL_REGISTRY:-127.0.0.1:5000}
BASE_IMAGE=python:3.11-slim
PLATFORMS=${BUILDKIT_BASE_PLATFORMS:-amd64 arm64}
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

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ ! -f "$STATE/apt-updated" ]; then apt-get update -q >/dev/null; touch "$STATE/apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

registry_up() { curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

apt_install curl ca-certificates  # every check below asks over HTTP

# --- 1. Docker engine --------------------------------------------------------------
ENGINE_PREEXISTING=0
if docker info >/dev/null 2>&1; then
  ENGINE_PREEXISTING=1
  log "a Docker engine answers already; leaving it as it is"
else
  apt_install docker.io curl ca-certificates
  log "starting dockerd (log: /var/log/dockerd.log)"
  # The local registry doubles as a mirror of Docker Hub: pulls of python:3.11-slim are
  # answered from it (step 4), just as an ordinary machine pulls them from the internet.
  mirror_args=(--registry-mirror "http://$REGISTRY_ADDR")
  setsid nohup dockerd --storage-driver=overlay2 "${mirror_args[@]}" \
    >/var/log/dockerd.log 2>&1 < /dev/null &
  wait_for 60 "dockerd" docker info
fi

# --- 2. Local registry -------------------------------------------------------------
if registry_up; then
  log "registry answers on $REGISTRY_ADDR"
else
  apt_install docker-registry
  mkdir -p "$STATE/registry"
  cat > "$STATE/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http: {addr: $REGISTRY_ADDR}
YAML
  log "starting docker-registry on $REGISTRY_ADDR"
  setsid nohup docker-registry serve "$STATE/registry.yml" \
    >/var/log/buildkit-registry.log 2>&1 < /dev/null &
  wait_for 30 "the registry" registry_up
fi

# --- 3. QEMU user emulation ----------------------------------------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  apt_install qemu-user-static binfmt-support
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  fi
  update-binfmts --enable >/dev/null 2>&1 || true
fi
if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  log "QEMU emulation for arm64 is enabled"
else
  log "warning: QEMU emulation for arm64 could not be enabled"
fi

# --- 4. Base images ------------------------------------------------------------------
have_base_index() {
  curl -fs -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$REGISTRY_ADDR/v2/library/python/manifests/3.11-slim"
}

make_base() {  # make_base ARCH -> pushes $REGISTRY_ADDR/library/python:3.11-slim-ARCH
  local arch=$1 dir="$STATE/base-$1"
  local ref="$REGISTRY_ADDR/library/python:3.11-slim-$arch"
  if curl -fs -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REGISTRY_ADDR/v2/library/python/manifests/3.11-slim-$arch"; then
    return 0
  fi
  apt_install debootstrap
  if [ ! -f "$dir/rootfs.tar" ]; then
    log "debootstrap bookworm for $arch (python3 + venv); this takes a minute or two"
    rm -rf "$dir" && mkdir -p "$dir"
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
      || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    debootstrap --variant=minbase --arch="$arch" --include=python3,python3-venv,ca-certificates \
      bookworm "$dir/rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1
    rm -rf "$dir/rootfs/var/lib/apt/lists/"* "$dir/rootfs/var/cache/apt/"* \
      "$dir/rootfs/usr/share/doc/"* "$dir/rootfs/usr/share/man/"* "$dir/rootfs/usr/share/locale/"*
    tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
    rm -rf "$dir/rootfs"
  fi
  cat > "$dir/Dockerfile" <<DOCKERFILE
FROM scratch
ADD rootfs.tar /
LABEL org.opencontainers.image.description="Local stand-in for python:3.11-slim: Debian bookworm minbase with python3, made by ci/prepare-machine.sh"
ENV LANG=C.UTF-8
CMD ["python3"]
DOCKERFILE
  # The Python SDK sets the platform, which `docker import` does not (see ENVIRONMENT.md).
  python3 - "$dir" "$ref" "linux/$arch" <<'PY'
import sys, docker
directory, ref, platform = sys.argv[1:4]
client = docker.from_env(timeout=600)
client.images.build(path=directory, tag=ref, platform=platform, rm=True)
PY
  docker push -q "$ref" >/dev/null
}

if [ "$ENGINE_PREEXISTING" = 1 ] && docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE can be pulled; nothing to make"
elif have_base_index; then
  log "base image index $REGISTRY_ADDR/library/python:3.11-slim is present"
else
  python3 -c 'import docker' 2>/dev/null || python3 -m pip install -q docker
  refs=()
  for arch in $PLATFORMS; do
    make_base "$arch"
    refs+=("$REGISTRY_ADDR/library/python:3.11-slim-$arch")
  done
  docker manifest rm "$REGISTRY_ADDR/library/python:3.11-slim" >/dev/null 2>&1 || true
  docker manifest create --insecure "$REGISTRY_ADDR/library/python:3.11-slim" "${refs[@]}" >/dev/null
  docker manifest push --insecure "$REGISTRY_ADDR/library/python:3.11-slim" >/dev/null
  log "pushed base image index $REGISTRY_ADDR/library/python:3.11-slim ($PLATFORMS)"
fi
if docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE pulls"
else
  log "warning: $BASE_IMAGE cannot be pulled; image builds need --build-arg BASE_IMAGE"
fi

# --- 5. MCP reference servers ----------------------------------------------------------
if [ -f "$ROOT/ci/install-mcp-peers.sh" ]; then
  bash "$ROOT/ci/install-mcp-peers.sh"
fi
log "machine ready"
