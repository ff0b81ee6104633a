"""Benchmark: the latency toolman adds to tools/call, its throughput and its memory.

    build/envs/toolman/bin/python bench/toolman_bench.py [--quick] [--json PATH]

Needs the MCP peers (ci/install-mcp-peers.sh) and toolman installed in the
running interpreter's environment (its console script next to sys.executable).
Every process is started here, listens on 127.0.0.1 only, and is stopped at the
end. Each figure is the median over rounds; "added" compares toolman against
the same downstream called directly with the same client in the same run:

  http   client -> toolman -> SDK server over Streamable HTTP   vs  client -> SDK server
  stdio  client -> toolman -> SDK server over stdio             vs  SDK stdio client -> server

Clients are the official SDK's (Streamable HTTP / stdio). A raw-httpx row
measures the same http path with a minimal client, so the client's own
overhead does not hide toolman's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("MCP_PEERS_DIR", REPO / "build" / "mcp-peers"))
PEER_PYTHON = PEERS / "venv" / "bin" / "python"
SDK_SERVER = REPO / "services" / "toolman" / "tests" / "peers" / "sdk_server.py"
ROUND_DEADLINE_SECONDS = 120.0
ARGS = {"text": "x" * 64}

Call = Callable[[], Awaitable[object]]


@dataclass
class Row:
    scenario: str
    route: str  # direct | toolman
    clients: int
    p50_ms: float
    p99_ms: float
    calls_per_second: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


@contextmanager
def started(argv: list[str], probe_url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(probe_url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def toolman_config(directory: Path, server: dict[str, Any]) -> Path:
    path = directory / f"toolman-{len(list(directory.iterdir()))}.json"
    path.write_text(json.dumps({"servers": {"bench": server}}))
    return path


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_round(calls: list[Call], per_client: int) -> tuple[list[float], float]:
    """Every client calls ``per_client`` times, concurrently; latencies (ms) and wall time."""
    latencies: list[float] = []

    async def worker(call: Call) -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    async with asyncio.timeout(ROUND_DEADLINE_SECONDS):
        await asyncio.gather(*(worker(call) for call in calls))
    return latencies, time.perf_counter() - began


def sdk_http_call(client: Client, tool: str) -> Call:
    async def call() -> object:
        result = await client.call_tool(tool, ARGS)
        if result.is_error:
            raise SystemExit(f"{tool} failed: {result}")
        return result

    return call


class RawClient:
    """The smallest correct Streamable HTTP client: initialize once, then POST tools/call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=30.0)
        self.headers = {"accept": "application/json, text/event-stream"}
        self.next_id = 0

    async def open(self) -> None:
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}
        response = await self.post("initialize", init)
        self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        await self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers)

    async def post(self, method: str, params: dict[str, Any]) -> httpx.Response:
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        response = await self.http.post(self.url, json=body, headers=self.headers)
        text = response.text
        if response.status_code != 200 or '"error"' in text:
            raise SystemExit(f"{method} failed: {response.status_code} {text[:200]}")
        return response

    def call(self, tool: str) -> Call:
        return lambda: self.post("tools/call", {"name": tool, "arguments": ARGS})


async def measure(
    scenario: str, route: str, clients: int, make: Callable[[], Any], rounds: int, calls: int
) -> tuple[Row, list[float]]:
    """Open ``clients`` connections with ``make`` and run the rounds; returns the median row."""
    p50s, p99s, rates = [], [], []
    async with make_clients(make, clients) as callers:
        await run_round(callers, 3)  # warm-up: connections, caches, JIT-free but cold paths
        per_client = max(5, calls // clients)
        for _ in range(rounds):
            latencies, wall = await run_round(callers, per_client)
            p50s.append(percentile(latencies, 0.50))
            p99s.append(percentile(latencies, 0.99))
            rates.append(len(latencies) / wall)
    row = Row(scenario, route, clients, statistics.median(p50s), statistics.median(p99s), statistics.median(rates))
    return row, p50s


class make_clients:  # noqa: N801 - used as a context manager factory
    def __init__(self, make: Callable[[], Any], count: int) -> None:
        self.make, self.count = make, count
        self.stack: list[Any] = []

    async def __aenter__(self) -> list[Call]:
        calls = []
        for _ in range(self.count):
            opener, call = self.make()
            entered = await opener.__aenter__()
            self.stack.append(opener)
            calls.append(call(entered))
        return calls

    async def __aexit__(self, *exc: object) -> None:
        for opener in reversed(self.stack):
            await opener.__aexit__(None, None, None)


class RawOpener:
    def __init__(self, url: str) -> None:
        self.client = RawClient(url)

    async def __aenter__(self) -> RawClient:
        await self.client.open()
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.http.aclose()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rounds, calls = (3, 150) if args.quick else (5, 600)
    concurrency = (1, 8, 32)
    rows: list[Row] = []
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        down_port, http_port, stdio_port = free_port(), free_port(), free_port()
        down_url = f"http://127.0.0.1:{down_port}/mcp"
        toolman = str(Path(sys.executable).with_name("toolman"))
        http_cfg = toolman_config(directory, {"url": down_url})
        stdio_cfg = toolman_config(directory, {"command": str(PEER_PYTHON), "args": [str(SDK_SERVER)]})
        with (
            started([str(PEER_PYTHON), str(SDK_SERVER), "--http", str(down_port)], f"http://127.0.0.1:{down_port}/"),
            started([toolman, "--config", str(http_cfg), "--host", "127.0.0.1", "--port", str(http_port),
                     "--log-level", "warning"], f"http://127.0.0.1:{http_port}/ready") as tm_http,
            started([toolman, "--config", str(stdio_cfg), "--host", "127.0.0.1", "--port", str(stdio_port),
                     "--log-level", "warning"], f"http://127.0.0.1:{stdio_port}/ready") as tm_stdio,
        ):  # fmt: skip
            via_http = f"http://127.0.0.1:{http_port}/mcp"
            via_stdio = f"http://127.0.0.1:{stdio_port}/mcp"
            time.sleep(1.0)  # let start-up garbage settle before the idle reading
            memory["toolman_idle_rss_mb"] = rss_mb(tm_http.pid)
            memory["toolman_stdio_idle_rss_mb"] = rss_mb(tm_stdio.pid)
            stdio_params = StdioServerParameters(command=str(PEER_PYTHON), args=[str(SDK_SERVER)])
            peak = 0.0
            for clients in concurrency:
                plan: list[tuple[str, str, Callable[[], Any]]] = [
                    ("http/sdk", "direct", lambda: (Client(down_url, mode="legacy"), lambda c: sdk_http_call(c, "echo"))),
                    ("http/sdk", "toolman", lambda: (Client(via_http, mode="legacy"), lambda c: sdk_http_call(c, "bench_echo"))),
                    ("http/raw", "direct", lambda: (RawOpener(down_url), lambda c: c.call("echo"))),
                    ("http/raw", "toolman", lambda: (RawOpener(via_http), lambda c: c.call("bench_echo"))),
                    ("stdio/sdk", "toolman", lambda: (Client(via_stdio, mode="legacy"), lambda c: sdk_http_call(c, "bench_echo"))),
                ]  # fmt: skip
                for scenario, route, make in plan:
                    row, _ = await measure(scenario, route, clients, make, rounds, calls)
                    rows.append(row)
                    peak = max(peak, rss_mb(tm_http.pid))
                # stdio direct: one SDK stdio session (one server process) shared by the clients
                async with Client(stdio_params) as shared:
                    shared_make = lambda: (_Shared(shared), lambda c: sdk_http_call(c, "echo"))  # noqa: E731
                    row, _ = await measure("stdio/sdk", "direct", clients, shared_make, rounds, calls)
                    rows.append(row)
            memory["toolman_load_rss_mb"] = max(peak, rss_mb(tm_http.pid))
    return {"rows": [asdict(r) for r in rows], "memory": memory, "rounds": rounds, "calls": calls}


class _Shared:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def __aenter__(self) -> Client:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        return None


def report(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [Row(**r) for r in result["rows"]]
    index = {(r.scenario, r.route, r.clients): r for r in rows}
    table = []
    print(f"\n{'scenario':<10} {'clients':>7} {'direct p50':>10} {'toolman p50':>11} {'added p50':>9} "
          f"{'direct p99':>10} {'toolman p99':>11} {'added p99':>9} {'calls/s direct':>14} {'calls/s toolman':>15} {'ratio p50':>9}")  # fmt: skip
    for scenario in ("http/raw", "http/sdk", "stdio/sdk"):
        for clients in sorted({r.clients for r in rows}):
            direct, via = index.get((scenario, "direct", clients)), index.get((scenario, "toolman", clients))
            if direct is None or via is None:
                continue
            line = {
                "scenario": scenario, "clients": clients,
                "direct_p50_ms": direct.p50_ms, "toolman_p50_ms": via.p50_ms, "added_p50_ms": via.p50_ms - direct.p50_ms,
                "direct_p99_ms": direct.p99_ms, "toolman_p99_ms": via.p99_ms, "added_p99_ms": via.p99_ms - direct.p99_ms,
                "direct_calls_per_second": direct.calls_per_second, "toolman_calls_per_second": via.calls_per_second,
                "ratio_p50": via.p50_ms / direct.p50_ms,
            }  # fmt: skip
            table.append(line)
            print(f"{scenario:<10} {clients:>7} {direct.p50_ms:>10.3f} {via.p50_ms:>11.3f} {line['added_p50_ms']:>9.3f} "
                  f"{direct.p99_ms:>10.3f} {via.p99_ms:>11.3f} {line['added_p99_ms']:>9.3f} "
                  f"{direct.calls_per_second:>14.0f} {via.calls_per_second:>15.0f} {line['ratio_p50']:>9.2f}")  # fmt: skip
    memory = result["memory"]
    print(f"\ntoolman RSS: idle {memory['toolman_idle_rss_mb']:.1f} MB (stdio config "
          f"{memory['toolman_stdio_idle_rss_mb']:.1f} MB), under load {memory['toolman_load_rss_mb']:.1f} MB")
    print(f"(medians over {result['rounds']} rounds; latencies in ms; goal: added p50 <= 1 ms, p99 <= 5 ms, idle RSS <= 60 MB)")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        print(f"missing {PEER_PYTHON}; run ci/install-mcp-peers.sh", file=sys.stderr)
        return 2
    result = asyncio.run(bench(args))
    result["table"] = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
