#!/usr/bin/env bash
# Make this machine ready for buildkit's tests. Idempotent: every step checks first and
# does nothing when its part is already there; a running daemon is never restarted.
#
#   1. Docker engines and buildx (ci/engines.sh): Debian 13's docker.io 26 with BuildKit,
#      containerd 1.7 and docker-buildx 0.13; the default daemon on /var/run/docker.sock
#      with the classic image store, and a second one with the containerd image store on
#      unix:///run/buildkit-engines/containerd-store.sock (why two: see engines.sh)
#   2. a registry on 127.0.0.1:5000   (Debian's docker-registry, the CNCF distribution)
#   3. QEMU user emulation      (binfmt_misc + qemu-user-static, for linux/arm64 containers)
#   4. base images              (python:3.11-slim for amd64 and arm64; made with debootstrap
#                                when they cannot be pulled, served through the local registry
#                                as a registry mirror so `FROM python:3.11-slim` resolves in
#                                both daemons and in BuildKit)
#   5. real MCP servers for the service tests (ci/install-mcp-peers.sh)
#   6. release tools: cosign (ci/release-tools.sh)
#   7. Kubernetes tools: kustomize (ci/kubernetes-tools.sh)
#
# On a machine whose engine already answers (a GitHub runner, Docker Desktop) steps 1 and
# 4 leave that engine alone: it can pull the real base images.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=ci/lib.sh
source "$ROOT/ci/lib.sh"
BASE_IMAGE=python:3.11-slim
PLATFORMS=${BUILDKIT_BASE_PLATFORMS:-amd64 arm64}
CONTAINERD_STORE=unix:///run/buildkit-engines/containerd-store.sock

apt_install curl ca-certificates iproute2  # every check below asks over HTTP

# --- 1. Docker engines ---------------------------------------------------------------
ENGINE_PREEXISTING=0
if docker info >/dev/null 2>&1; then ENGINE_PREEXISTING=1; fi
bash "$ROOT/ci/engines.sh"

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
    debootstrap --variant=minbase --arch="$arch" --include=python3,python3-venv,ca-certificates \
      bookworm "$dir/rootfs" "$(debian_mirror)" >"$dir/debootstrap.log" 2>&1
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
unpulled=()
for host in "" "$CONTAINERD_STORE"; do  # the default daemon, then the containerd-store one
  if ! docker ${host:+-H "$host"} info >/dev/null 2>&1; then continue; fi
  if docker ${host:+-H "$host"} pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE pulls in ${host:-the default engine}"
  else
    log "warning: $BASE_IMAGE cannot be pulled in ${host:-the default engine}"
    unpulled+=("${host:-the default engine}")
  fi
done
if [ ${#unpulled[@]} -gt 0 ] && require_all; then  # the image tests would fail, less clearly
  log "BUILDKIT_REQUIRE_ALL is set and $BASE_IMAGE cannot be pulled in: ${unpulled[*]}"
  exit 1
fi

# --- 5. MCP reference servers ----------------------------------------------------------
if [ -f "$ROOT/ci/install-mcp-peers.sh" ]; then
  bash "$ROOT/ci/install-mcp-peers.sh"
fi
bash "$ROOT/ci/release-tools.sh"  # 6. cosign (Debian 13), for signing and verify
bash "$ROOT/ci/kubernetes-tools.sh"  # 7. kustomize, for the orchestrator's deploy/ tests
log "machine ready"
