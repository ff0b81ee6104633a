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
SERVICES=(orchestrator:orchestrator:orchestrator:8080 toolman:toolman:toolman:3000
          mcp_wrapper:mcp-wrapper:mcp-wrapper:)
PLATFORM_TAGS=()
for minor in $(seq 36 -1 17); do PLATFORM_TAGS+=(--platform "manylinux_2_${minor}_x86_64"); done
PLATFORM_TAGS+=(--platform manylinux2014_x86_64)
rm -rf "$OUT" && mkdir -p "$OUT"

for entry in "${SERVICES[@]}"; do                       # Stage 1: tests
  IFS=: read -r svc script image port <<<"$entry"
  uv venv -q --python "$(command -v python)" "$OUT/envs/$svc"
  uv pip install -q --python "$OUT/envs/$svc/bin/python" -e "services/$svc[test]"
  (cd "services/$svc" && "../../$OUT/envs/$svc/bin/python" -m pytest -q -p no:cacheprovider)
done
for entry in "${SERVICES[@]}"; do                       # lint
  IFS=: read -r svc script image port <<<"$entry"
  ruff check --no-fix "services/$svc"
  mypy --config-file pyproject.toml --python-executable "$OUT/envs/$svc/bin/python" \
    --cache-dir "$OUT/mypy-cache/$svc" "services/$svc/src/$svc" "services/$svc/tests"
done
for entry in "${SERVICES[@]}"; do                       # format check
  IFS=: read -r svc script image port <<<"$entry"
  ruff format --check "services/$svc"
done
VERSION=$(python -m buildkit version)
for entry in "${SERVICES[@]}"; do                       # Stage 2: wheels
  IFS=: read -r svc script image port <<<"$entry"
  SETUPTOOLS_SCM_PRETEND_VERSION="$VERSION" uv build -q --out-dir "$OUT/dist/$svc" "services/$svc"
  uv venv -q --python "$(command -v python)" "$OUT/check/$svc"
  uv pip install -q --python "$OUT/check/$svc/bin/python" "$OUT"/dist/"$svc"/*.whl
  "$OUT/check/$svc/bin/$script" --version
done
for entry in "${SERVICES[@]}"; do                       # Stage 3: images
  IFS=: read -r svc script image port <<<"$entry"
  ctx="$OUT/context/$svc"
  mkdir -p "$ctx"
  cp "dockerfiles/$image.Dockerfile" "$ctx/Dockerfile"
  cp dockerfiles/.dockerignore "$ctx/"
  python -m pip install -q --disable-pip-version-check --no-index \
    --find-links build/wheelhouse/linux-amd64 --target "$ctx/linux-amd64/opt/$image" --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 "${PLATFORM_TAGS[@]}" \
    "$OUT"/dist/"$svc"/*.whl
  sed -i '1s|^#!.*|#!/usr/bin/env python3|' "$ctx/linux-amd64/opt/$image"/bin/*  # the image's python3
  ref="$PREFIX/$image:$TAG"
  docker build -q -t "$ref" --build-arg TARGETOS=linux --build-arg TARGETARCH=amd64 "$ctx"
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
