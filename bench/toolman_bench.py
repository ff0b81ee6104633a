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

stdio/raw (both routes), stdio/2026 and stdio/pool are measured in alternating
rounds (one round of each in turn), so the load of a shared machine drifts
under all of them alike; their ratio to the 2025 path is taken round by round.

The raw rows isolate toolman's own cost: the minimal clients cost a few
microseconds, the SDK's clients close to a millisecond. stdio/sdk also
includes the difference between the SDK's HTTP and stdio client stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
PEER_PYTHON = PEERS / "venv" / "bin" / "python"
SDK_SERVER = REPO / "services" / "toolman" / "tests" / "peers" / "sdk_server.py"
ROUND_DEADLINE_SECONDS = 120.0
POOL_INSTANCES = 2  # this machine has 2 cores; toolman itself needs some of them
ARGUMENTS = {"text": "x" * 64}
INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "1"},
}

Call = Callable[[], Awaitable[None]]


@dataclass
class Row:
    scenario: str
    route: str  # direct | toolman
    clients: int
    p50_ms: float
    p99_ms: float
    calls_per_second: float


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


# --- minimal clients ---------------------------------------------------------


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
}


class RawHttp:
    """One keep-alive HTTP/1.1 connection speaking JSON-RPC with JSON answers.

    ``modern``: 2026-07-28 requests (no session; envelope and routing headers each time).
    """

    def __init__(self, port: int, *, modern: bool = False) -> None:
        self.port = port
        self.ids = itertools.count(1)
        self.session: bytes = b""
        self.modern = modern

    async def open(self) -> RawHttp:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if self.modern:
            return self
        headers, _ = await self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}
        )
        session = headers[b"mcp-session-id"]
        self.session = b"mcp-session-id: " + session + b"\r\nmcp-protocol-version: 2025-11-25\r\n"
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    async def post(
        self, message: dict[str, Any], routing: bytes = b""
    ) -> tuple[dict[bytes, bytes], bytes]:
        if self.reader.at_eof():  # the server closed it while idle (alternating rounds)
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        body = json.dumps(message).encode()
        self.writer.write(
            b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:" + str(self.port).encode() + b"\r\n"
            b"content-type: application/json\r\n"
            b"accept: application/json, text/event-stream\r\n"
            + self.session
            + routing
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if not lines[0].startswith((b"HTTP/1.1 200", b"HTTP/1.1 202")) or b'"error"' in data:
            raise SystemExit(f"{message.get('method')} failed: {lines[0]!r} {data[:200]!r}")
        return headers, data

    def caller(self, tool: str) -> Call:
        params: dict[str, Any] = {"name": tool, "arguments": ARGUMENTS}
        routing = b""
        if self.modern:
            params["_meta"] = MODERN_META
            routing = (
                b"mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\n"
                b"mcp-name: " + tool.encode() + b"\r\n"
            )

        async def call() -> None:
            message = {"jsonrpc": "2.0", "id": next(self.ids), "method": "tools/call"}
            await self.post({**message, "params": params}, routing)

        return call

    async def close(self) -> None:
        self.writer.close()


class RawStdio:
    """The server as a child process; concurrent requests multiplexed by id on one pipe."""

    async def open(self) -> RawStdio:
        self.process = await asyncio.create_subprocess_exec(
            str(PEER_PYTHON),
            str(SDK_SERVER),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            limit=16 * 1024 * 1024,
        )
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.reader = asyncio.create_task(self._read())
        await self.request("initialize", INIT)
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            future = self.pending.pop(message.get("id"), None)
            if future is not None:
                if "error" in message:
                    future.set_exception(SystemExit(f"stdio call failed: {message['error']}"))
                else:
                    future.set_result(None)

    async def request(self, method: str, params: dict[str, Any]) -> None:
        request_id = next(self.ids)
        future = self.pending[request_id] = asyncio.get_running_loop().create_future()
        self._write({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        await future

    def caller(self, tool: str) -> Call:
        return lambda: self.request("tools/call", {"name": tool, "arguments": ARGUMENTS})

    async def close(self) -> None:
        self.reader.cancel()
        self.process.kill()
        await self.process.wait()


def sdk_caller(client: Client, tool: str) -> Call:
    async def call() -> None:
        result = await client.call_tool(tool, ARGUMENTS)
        if result.is_error:
            raise SystemExit(f"{tool} failed: {result}")

    return call


# --- measuring ---------------------------------------------------------------

Opener = Callable[[AsyncExitStack, int], Awaitable[list[Call]]]


async def run_round(calls: list[Call], per_client: int) -> tuple[list[float], float]:
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


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    scenario: str, route: str, clients: int, opener: Opener, *, rounds: int, calls: int
) -> Row:
    async with AsyncExitStack() as stack:
        callers = await opener(stack, clients)
        await run_round(callers, 5)  # warm-up: connections, caches, first-call paths
        per_client = max(5, calls // clients)
        p50s, p99s, rates = [], [], []
        for _ in range(rounds):
            latencies, wall = await run_round(callers, per_client)
            p50s.append(percentile(latencies, 0.50))
            p99s.append(percentile(latencies, 0.99))
            rates.append(len(latencies) / wall)
    return Row(
        scenario,
        route,
        clients,
        statistics.median(p50s),
        statistics.median(p99s),
        statistics.median(rates),
    )


async def measure_side_by_side(
    entries: list[tuple[str, str, Opener]], clients: int, *, rounds: int, calls: int
) -> tuple[list[Row], dict[str, float]]:
    """Rows for several routes measured in alternating rounds (A B C A B C ...).

    On a loaded machine the load drifts within seconds; alternating rounds puts
    every route under the same drift. Also returns, per route, the median over
    rounds of its calls/s divided by the first route's in the same round.
    """
    async with AsyncExitStack() as stack:
        callers = [await opener(stack, clients) for _s, _r, opener in entries]
        for calls_of in callers:
            await run_round(calls_of, 5)
        per_client = max(5, calls // clients)
        samples: list[list[tuple[float, float, float]]] = [[] for _ in entries]
        for _ in range(rounds):
            for index, calls_of in enumerate(callers):
                latencies, wall = await run_round(calls_of, per_client)
                rate = len(latencies) / wall
                samples[index].append(
                    (percentile(latencies, 0.50), percentile(latencies, 0.99), rate)
                )
    rows = [
        Row(
            scenario,
            route,
            clients,
            statistics.median(p50 for p50, _p99, _rate in taken),
            statistics.median(p99 for _p50, p99, _rate in taken),
            statistics.median(rate for _p50, _p99, rate in taken),
        )
        for (scenario, route, _opener), taken in zip(entries, samples, strict=True)
    ]
    reference = [rate for _p50, _p99, rate in samples[1]]  # the 2025 path through toolman
    ratios = {
        f"{scenario} {route}": statistics.median(
            rate / base for (_p50, _p99, rate), base in zip(taken, reference, strict=True)
        )
        for (scenario, route, _opener), taken in zip(entries, samples, strict=True)
    }
    return rows, ratios


def raw_http(port: int, tool: str, *, modern: bool = False) -> Opener:
    async def opener(stack: AsyncExitStack, clients: int) -> list[Call]:
        calls = []
        for _ in range(clients):
            client = await RawHttp(port, modern=modern).open()
            stack.push_async_callback(client.close)
            calls.append(client.caller(tool))
        return calls

    return opener


def raw_stdio(tool: str) -> Opener:
    async def opener(stack: AsyncExitStack, clients: int) -> list[Call]:
        client = await RawStdio().open()  # one server process, shared like toolman shares it
        stack.push_async_callback(client.close)
        return [client.caller(tool) for _ in range(clients)]

    return opener


def sdk_http(url: str, tool: str) -> Opener:
    async def opener(stack: AsyncExitStack, clients: int) -> list[Call]:
        calls = []
        for _ in range(clients):
            client = await stack.enter_async_context(Client(url, mode="legacy", cache=None))
            calls.append(sdk_caller(client, tool))
        return calls

    return opener


def sdk_stdio(tool: str) -> Opener:
    async def opener(stack: AsyncExitStack, clients: int) -> list[Call]:
        params = StdioServerParameters(command=str(PEER_PYTHON), args=[str(SDK_SERVER)])
        client = await stack.enter_async_context(Client(params, mode="legacy", cache=None))
        return [sdk_caller(client, tool) for _ in range(clients)]

    return opener


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
    rounds, calls = (3, 200) if quick else (5, 800)
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
            paired: list[tuple[str, str, Opener]] = [
                ("stdio/raw", "direct", raw_stdio("echo")),
                ("stdio/raw", "toolman", raw_http(via_stdio_port, "bench_echo")),
                ("stdio/2026", "toolman", raw_http(via_stdio_port, "bench_echo", modern=True)),
                ("stdio/pool", "toolman", raw_http(via_pool_port, "bench_echo")),
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
            ratios: dict[str, dict[str, float]] = {}
            peaks: dict[int, float] = {}
            async with peak_rss([via_stdio.pid, via_http.pid], peaks):
                for clients in (1, 8, 32):
                    side_rows, ratios[str(clients)] = await measure_side_by_side(
                        paired, clients, rounds=rounds, calls=calls
                    )
                    rows += side_rows
                    for scenario, route, opener in plan:
                        rows.append(
                            await measure(
                                scenario, route, clients, opener, rounds=rounds, calls=calls
                            )
                        )
                        print(".", end="", flush=True, file=sys.stderr)
            memory["load_rss_mb"] = {"stdio": peaks[via_stdio.pid], "http": peaks[via_http.pid]}
    print(file=sys.stderr)
    return {
        "rounds": rounds,
        "calls_per_round": calls,
        "rows": [asdict(r) for r in rows],
        "paired_ratios": ratios,
        "memory": memory,
    }


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = {(r["scenario"], r["route"], r["clients"]): r for r in result["rows"]}
    table = []
    for scenario in ("stdio/raw", "stdio/2026", "stdio/pool", "http/raw", "stdio/sdk", "http/sdk"):
        baseline = "stdio/raw" if scenario in ("stdio/2026", "stdio/pool") else scenario
        for clients in (1, 8, 32):
            direct, via = rows[(baseline, "direct", clients)], rows[(scenario, "toolman", clients)]
            table.append(
                {
                    "scenario": scenario,
                    "clients": clients,
                    "direct_p50_ms": direct["p50_ms"],
                    "toolman_p50_ms": via["p50_ms"],
                    "added_p50_ms": via["p50_ms"] - direct["p50_ms"],
                    "direct_p99_ms": direct["p99_ms"],
                    "toolman_p99_ms": via["p99_ms"],
                    "added_p99_ms": via["p99_ms"] - direct["p99_ms"],
                    "direct_calls_per_second": direct["calls_per_second"],
                    "toolman_calls_per_second": via["calls_per_second"],
                    "p50_ratio": via["p50_ms"] / direct["p50_ms"],
                }
            )
    return table


def print_table(table: list[dict[str, Any]], result: dict[str, Any]) -> None:
    header = (
        "scenario",
        "clients",
        "p50 direct",
        "p50 toolman",
        "p50 added",
        "p99 direct",
        "p99 toolman",
        "p99 added",
        "calls/s direct",
        "calls/s toolman",
        "p50 ratio",
    )
    print(" ".join(f"{h:>15}" if i > 1 else f"{h:<10}" for i, h in enumerate(header)))
    for line in table:
        figures = [
            f"{line[key]:>15.3f}"
            for key in (
                *("direct_p50_ms", "toolman_p50_ms", "added_p50_ms"),
                *("direct_p99_ms", "toolman_p99_ms", "added_p99_ms"),
            )
        ]
        figures += [f"{line['direct_calls_per_second']:>15.0f}"]
        figures += [f"{line['toolman_calls_per_second']:>15.0f}", f"{line['p50_ratio']:>15.2f}"]
        print(f"{line['scenario']:<10} {line['clients']:<10} " + " ".join(figures))
    rows = {(r["scenario"], r["route"], r["clients"]): r for r in result["rows"]}
    print("\nthrough toolman, side by side (same run): calls/s and p50 ms")
    for clients in (1, 8, 32):
        legacy, modern = (
            rows[("stdio/raw", "toolman", clients)],
            rows[("stdio/2026", "toolman", clients)],
        )
        pool = rows[("stdio/pool", "toolman", clients)]
        print(
            f"{clients:>3} clients: "
            f"2025 {legacy['calls_per_second']:>6.0f}/s {legacy['p50_ms']:.3f}"
            f" | 2026 {modern['calls_per_second']:>6.0f}/s {modern['p50_ms']:.3f}"
            f" (x{modern['calls_per_second'] / legacy['calls_per_second']:.2f})"
            f" | pool of {POOL_INSTANCES} {pool['calls_per_second']:>6.0f}/s {pool['p50_ms']:.3f}"
            f" (x{pool['calls_per_second'] / legacy['calls_per_second']:.2f})"
        )
    print("\ncalls/s over the 2025 path's in the same round (median over rounds)")
    for clients, ratios in result["paired_ratios"].items():
        print(
            f"{clients:>3} clients: 2026 x{ratios['stdio/2026 toolman']:.2f}"
            f" | pool of {POOL_INSTANCES} x{ratios['stdio/pool toolman']:.2f}"
            f" | direct, no toolman x{ratios['stdio/raw direct']:.2f}"
        )
    idle, load = result["memory"]["idle_rss_mb"], result["memory"]["load_rss_mb"]
    print(
        f"\ntoolman RSS (MB): idle {idle['stdio']:.1f} (stdio downstream), "
        f"{idle['http']:.1f} (http); peak under load {load['stdio']:.1f} / {load['http']:.1f}"
    )
    print(
        f"latencies in ms, medians over {result['rounds']} rounds of about "
        f"{result['calls_per_round']} calls; goal: added p50 <= 1 ms, p99 <= 5 ms, "
        "idle RSS <= 60 MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds of ~200 calls instead of 5 of ~800"
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
