#!/usr/bin/env bash
# The baseline for `nox -s bench`: what build-all.sh did, as a plain script. The same
# commands buildkit runs, one after another, for every service, every time, no skipping:
# environments, tests, lint (ruff + mypy), format check, wheel + install proof, and an
# image per service (the same context: the wheel installed for the platform on the host),
# smoke-tested like buildkit does.
#
#   bash bench/sequential-build.sh REGISTRY_PREFIX TAG
# Run from the project root, with uv, ruff, mypy, pip and docker on PATH.
set -euo pipefail

PREFIX=${1:?registry prefix}
TAG=${2:?tag}
OUT=build/sequential
# service:script:image:port:directory its user owns:service it requires (built before it)
SERVICES=(toolman:toolman:toolman:3000:: mcp_wrapper:mcp-wrapper:mcp-wrapper:::
          orchestrator:orchestrator:orchestrator:8080:var/lib/orchestrator:toolman)
PLATFORM_TAGS=()
for minor in $(seq 36 -1 17); do PLATFORM_TAGS+=(--platform "manylinux_2_${minor}_x86_64"); done
PLATFORM_TAGS+=(--platform manylinux2014_x86_64)
rm -rf "$OUT" && mkdir -p "$OUT"

for entry in "${SERVICES[@]}"; do                       # Stage 1: tests
  IFS=: read -r svc script image port owned requires <<<"$entry"
  uv venv -q --python "$(command -v python)" "$OUT/envs/$svc"
  uv pip install -q --python "$OUT/envs/$svc/bin/python" -e "services/$svc[test]"
  (cd "services/$svc" && "../../$OUT/envs/$svc/bin/python" -m pytest -q -p no:cacheprovider)
done
for entry in "${SERVICES[@]}"; do                       # lint
  IFS=: read -r svc script image port owned requires <<<"$entry"
  ruff check --no-fix "services/$svc"
  mypy --config-file pyproject.toml --python-executable "$OUT/envs/$svc/bin/python" \
    --cache-dir "$OUT/mypy-cache/$svc" "services/$svc/src/$svc" "services/$svc/tests"
done
for entry in "${SERVICES[@]}"; do                       # format check
  IFS=: read -r svc script image port owned requires <<<"$entry"
  ruff format --check "services/$svc"
done
VERSION=$(python -m buildkit version)
for entry in "${SERVICES[@]}"; do                       # Stage 2: wheels
  IFS=: read -r svc script image port owned requires <<<"$entry"
  SETUPTOOLS_SCM_PRETEND_VERSION="$VERSION" uv build -q --out-dir "$OUT/dist/$svc" "services/$svc"
  uv venv -q --python "$(command -v python)" "$OUT/check/$svc"
  siblings=()  # a service it requires comes from here, never from an index
  [ -z "$requires" ] || siblings=("$OUT"/dist/"$requires"/*.whl)
  uv pip install -q --python "$OUT/check/$svc/bin/python" "$OUT"/dist/"$svc"/*.whl "${siblings[@]}"
  "$OUT/check/$svc/bin/$script" --version
done
for entry in "${SERVICES[@]}"; do                       # Stage 3: images
  IFS=: read -r svc script image port owned requires <<<"$entry"
  ctx="$OUT/context/$svc"
  siblings=()
  [ -z "$requires" ] || siblings=("$OUT"/dist/"$requires"/*.whl)
  trees="$ctx/trees-baseline"                           # the Dockerfiles' IMAGE_TREES
  mkdir -p "$trees"
  cp "dockerfiles/$image.Dockerfile" "$ctx/Dockerfile"
  cp dockerfiles/.dockerignore "$ctx/"
  constraint=()
  [ -f "locks/$svc.txt" ] && constraint=(--constraint "locks/$svc.txt")  # the lock's versions
  python -m pip install -q --disable-pip-version-check --no-index "${constraint[@]}" \
    --find-links build/wheelhouse/linux-amd64 --target "$trees/linux-amd64/opt/$image" --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 "${PLATFORM_TAGS[@]}" \
    "$OUT"/dist/"$svc"/*.whl "${siblings[@]}"
  sed -i '1s|^#!.*|#!/usr/bin/env python3|' "$trees/linux-amd64/opt/$image"/bin/*  # the image's python3
  if [ -n "$owned" ]; then                              # the user's directory, its parents root's
    mkdir -p "$OUT/owned/$svc/$owned"
    parents=() dir=$(dirname "$owned")
    while [ "$dir" != . ]; do parents=("$dir" "${parents[@]}"); dir=$(dirname "$dir"); done
    tar -C "$OUT/owned/$svc" -cf "$trees/user-owned.tar" --no-recursion --numeric-owner \
      --owner=0 --group=0 "${parents[@]}"
    tar -C "$OUT/owned/$svc" -rf "$trees/user-owned.tar" --no-recursion --numeric-owner \
      --owner=10001 --group=10001 "$owned"
  fi
  ref="$PREFIX/$image:$TAG"
  docker build -q -t "$ref" --build-arg TARGETOS=linux --build-arg TARGETARCH=amd64 \
    --build-arg IMAGE_TREES=trees-baseline "$ctx"
  if [ -n "$port" ]; then                               # smoke: /health must answer
    cid=$(docker run -d -p "127.0.0.1::$port" "$ref")
    trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
    ok=0 hostport=""
    for _ in $(seq 1 300); do
      [ -n "$hostport" ] || hostport=$( (docker port "$cid" "$port/tcp" 2>/dev/null || true) | head -n1 | cut -d: -f2)
      if [ -n "$hostport" ] && curl -fsS "http://127.0.0.1:$hostport/health" >/dev/null 2>&1; then
        ok=1; break
      fi
      sleep 0.2
    done
    docker rm -f "$cid" >/dev/null
    [ "$ok" = 1 ] || { echo "smoke test of $ref failed" >&2; exit 1; }
  else
    docker run --rm "$ref" --version
  fi
done
echo "sequential build done"
