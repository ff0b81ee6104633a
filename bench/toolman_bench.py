"""Benchmark: the latency toolman adds to tools/call, its throughput and its memory.

    build/envs/toolman/bin/python bench/toolman_bench.py [--quick] [--json PATH]

Needs the MCP peers (ci/install-mcp-peers.sh) and toolman installed in the
running interpreter's environment (its console script next to sys.executable).
Every process is started here, listens on 127.0.0.1 only, and is stopped at the
end; every round has a deadline.

Downstream is the SDK test server (tests/peers/sdk_server.py), its ``echo``
tool. Each scenario is measured twice in the same run, directly and through
toolman, with the same kind of client; "added" is the difference of the
medians over rounds:

  stdio/raw  direct: minimal JSON-RPC client on the server's stdin/stdout
             toolman: minimal HTTP client -> toolman -> the server over stdio
  stdio/sdk  direct: SDK stdio client; toolman: SDK Streamable HTTP client -> toolman -> stdio
  http/raw   minimal HTTP client -> the server over HTTP, directly or through toolman
  http/sdk   SDK Streamable HTTP client -> the server over HTTP, directly or through toolman
  stdio/2026 the 2026-07-28 path: stateless raw HTTP requests (envelope in _meta, routing
             headers, no session) -> toolman -> the server over stdio; its "direct" is
             stdio/raw's, so both toolman paths are compared with the same baseline
  stdio/pool the stdio/raw client -> toolman -> a pool of POOL_INSTANCES copies of the
             server ("instances" in the config); compared with stdio/raw's direct row,
             and with stdio/raw's toolman row (one process) in the pool table

A round lasts a fixed time, every client calling in a loop until its end.
stdio/raw (both routes), stdio/2026 and stdio/pool are measured in alternating
rounds (one round of each in turn, in an order that turns and reverses:
toolman_rounds.round_order; ALTERNATING_ROUNDS of them), so the load of a shared
machine drifts under all of them alike; their ratio to the 2025 path is taken
round by round. Each of those rounds also reads the CPU time the clients,
toolman and its downstream processes spent, per call: the figure that tells the
two paths' cost apart when calls/s is bounded by the one downstream process.

The raw rows isolate toolman's own cost: the minimal clients spend 60-110 us
of CPU per call (the clients' column). stdio/sdk also includes the difference
between the SDK's HTTP and stdio client stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.*

from bench.toolman_clients import (
    PEER_PYTHON,
    SDK_SERVER,
    Opener,
    raw_http,
    raw_stdio,
    sdk_http,
    sdk_stdio,
)
from bench.toolman_report import print_table, summarise
from bench.toolman_rounds import Route, Row, measure, measure_side_by_side, paired

POOL_INSTANCES = 2  # this machine has 2 cores; toolman itself needs some of them
ALTERNATING_ROUNDS = 9


# --- processes -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout:g} s")


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    wait_for_port(port, process, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /ready HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.05)
    raise SystemExit(f"toolman on port {port} not ready after {timeout:g} s")


@contextmanager
def started(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@asynccontextmanager
async def peak_rss(pids: list[int], peaks: dict[int, float]) -> AsyncIterator[None]:
    async def sample() -> None:
        while True:
            for pid in pids:
                peaks[pid] = max(peaks.get(pid, 0.0), rss_mb(pid))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()


async def bench(quick: bool) -> dict[str, Any]:
    rounds, seconds = (3, 0.3) if quick else (5, 1.0)
    # The side-by-side routes carry the goals (ratios of calls/s): more rounds.
    alternating_rounds = 3 if quick else ALTERNATING_ROUNDS
    toolman = str(Path(sys.executable).with_name("toolman"))
    down_port, via_http_port, via_stdio_port = free_port(), free_port(), free_port()
    via_pool_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        configs = {
            "http": {"bench": {"url": f"http://127.0.0.1:{down_port}/mcp"}},
            "stdio": {"bench": {"command": str(PEER_PYTHON), "args": [str(SDK_SERVER)]}},
            "pool": {
                "bench": {
                    "command": str(PEER_PYTHON),
                    "args": [str(SDK_SERVER)],
                    "instances": POOL_INSTANCES,
                }
            },
        }
        paths = {}
        for name, servers in configs.items():
            paths[name] = Path(tmp) / f"{name}.json"
            paths[name].write_text(json.dumps({"servers": servers}))

        def toolman_argv(config: Path, port: int) -> list[str]:
            return [toolman, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]

        down_argv = [str(PEER_PYTHON), str(SDK_SERVER), "--http", str(down_port), "--json-response"]
        with (
            started(down_argv) as downstream,
            started(toolman_argv(paths["http"], via_http_port)) as via_http,
            started(toolman_argv(paths["stdio"], via_stdio_port)) as via_stdio,
            started(toolman_argv(paths["pool"], via_pool_port)) as via_pool,
        ):
            wait_for_port(down_port, downstream)
            wait_ready(via_http_port, via_http)
            wait_ready(via_stdio_port, via_stdio)
            wait_ready(via_pool_port, via_pool)
            await asyncio.sleep(1.0)  # let start-up settle before the idle reading
            memory = {"idle_rss_mb": {"stdio": rss_mb(via_stdio.pid), "http": rss_mb(via_http.pid)}}
            down_url = f"http://127.0.0.1:{down_port}/mcp"
            # Measured in alternating rounds, so their ratios share the machine's load.
            alternating = [
                Route("stdio/raw", "direct", raw_stdio("echo")),
                Route(
                    "stdio/raw", "toolman", raw_http(via_stdio_port, "bench_echo"), via_stdio.pid
                ),
                Route(
                    "stdio/2026",
                    "toolman",
                    raw_http(via_stdio_port, "bench_echo", modern=True),
                    via_stdio.pid,
                ),
                Route(
                    "stdio/pool",
                    "toolman",
                    raw_http(via_pool_port, "bench_echo"),
                    via_pool.pid,
                    POOL_INSTANCES,
                ),
            ]
            plan: list[tuple[str, str, Opener]] = [
                ("http/raw", "direct", raw_http(down_port, "echo")),
                ("http/raw", "toolman", raw_http(via_http_port, "bench_echo")),
                ("stdio/sdk", "direct", sdk_stdio("echo")),
                (
                    "stdio/sdk",
                    "toolman",
                    sdk_http(f"http://127.0.0.1:{via_stdio_port}/mcp", "bench_echo"),
                ),
                ("http/sdk", "direct", sdk_http(down_url, "echo")),
                (
                    "http/sdk",
                    "toolman",
                    sdk_http(f"http://127.0.0.1:{via_http_port}/mcp", "bench_echo"),
                ),
            ]
            rows: list[Row] = []
            ratios: dict[str, dict[str, dict[str, Any]]] = {}
            side_rounds: dict[str, dict[str, list[dict[str, Any]]]] = {}
            peaks: dict[int, float] = {}
            async with peak_rss([via_stdio.pid, via_http.pid], peaks):
                for clients in (1, 8, 32):
                    side_rows, samples = await measure_side_by_side(
                        alternating, clients, rounds=alternating_rounds, seconds=seconds
                    )
                    reference = samples[1]  # the 2025 path through toolman
                    ratios[str(clients)] = {
                        route.name: asdict(paired(taken, reference))
                        for route, taken in zip(alternating, samples, strict=True)
                    }
                    side_rounds[str(clients)] = {
                        route.name: [asdict(sample) for sample in taken]
                        for route, taken in zip(alternating, samples, strict=True)
                    }
                    rows += side_rows
                    for scenario, route, opener in plan:
                        rows.append(
                            await measure(
                                scenario, route, clients, opener, rounds=rounds, seconds=seconds
                            )
                        )
                        print(".", end="", flush=True, file=sys.stderr)
            memory["load_rss_mb"] = {"stdio": peaks[via_stdio.pid], "http": peaks[via_http.pid]}
    print(file=sys.stderr)
    return {
        "rounds": rounds,
        "round_seconds": seconds,
        "alternating_rounds": alternating_rounds,
        "pool_instances": POOL_INSTANCES,
        "rows": [asdict(r) for r in rows],
        "paired_ratios": ratios,
        "side_by_side_rounds": side_rounds,
        "memory": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds of 0.3 s instead of 5 (9 side by side) of 1 s",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        print(f"missing {PEER_PYTHON}; run ci/install-mcp-peers.sh", file=sys.stderr)
        return 2
    started_at = time.monotonic()
    result = asyncio.run(bench(args.quick))
    result["table"] = summarise(result)
    result["seconds"] = round(time.monotonic() - started_at, 1)
    print_table(result["table"], result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
