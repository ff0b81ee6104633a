"""Benchmark: what mcp-wrapper adds between an MCP client and toolman.

    build/envs/toolman/bin/python bench/wrapper_bench.py [--quick] [--json PATH]

Any Python with the official ``mcp`` SDK works; ``toolman`` and ``mcp-wrapper``
are taken from next to that interpreter, else ``build/wheel-check/<service>/bin``,
else PATH. With the MCP peers installed (``bash ci/install-mcp-peers.sh``)
toolman fronts mcp-server-time and a ``tools/call`` row is measured too.

Everything runs on 127.0.0.1 and is started and stopped here. In each round
the same requests go the two ways, in alternating order:

  direct       client --HTTP--> toolman
  via wrapper  client --stdio--> mcp-wrapper --HTTP--> toolman

Rows: "raw" clients (a keep-alive http.client POST vs. one JSON line on the
wrapper's pipes) isolate the wrapper's own cost; "sdk" rows use the official
SDK's Streamable HTTP client vs. its stdio client, as an agent would. Figures
are medians over rounds of each round's p50 / p99; "added" is via - direct
and the ratio via / direct, measured side by side in the same run.

Start-up is spawn → first answered ``initialize``, against a bare interpreter
answering one line (the floor for any Python process). RSS is the wrapper's
VmRSS/VmHWM after the latency rounds, against that bare interpreter.
Goals (issue 6): p50 added ≤ 1 ms, start-up ≤ 300 ms, RSS ≤ 30 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "wrapper-bench", "version": "1"},
}
TIME_CALL = {"name": "time_get_current_time", "arguments": {"timezone": "UTC"}}
DEADLINE = 30.0  # seconds any single wait may take
BARE_ECHO = "import sys; sys.stdin.readline(); sys.stdout.write('{}\\n'); sys.stdout.flush()"


@dataclass
class Row:
    name: str
    direct_p50_ms: float
    via_p50_ms: float
    direct_p99_ms: float
    via_p99_ms: float

    @property
    def added_p50_ms(self) -> float:
        return self.via_p50_ms - self.direct_p50_ms

    @property
    def added_p99_ms(self) -> float:
        return self.via_p99_ms - self.direct_p99_ms


@dataclass
class Report:
    rounds: int
    requests_per_round: int
    rows: list[Row] = field(default_factory=list)
    startup_ms: float = 0.0
    bare_startup_ms: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    bare_rss_mb: float = 0.0


def find_script(service: str, name: str) -> Path:
    for candidate in (
        Path(sys.executable).parent / name,
        REPO / "build" / "wheel-check" / service / "bin" / name,
    ):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        sys.exit(
            f"wrapper_bench: {name} not found; install services/{service} (see bench docstring)"
        )
    return Path(found)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {DEADLINE:g} s")
        time.sleep(0.02)


@contextmanager
def toolman(workdir: Path) -> Iterator[tuple[str, bool]]:
    """Yield toolman's /mcp URL and whether a downstream time server is configured."""
    peers_python = PEERS / "venv" / "bin" / "python"
    with_time = peers_python.exists()
    servers = {}
    if with_time:
        args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
        servers["time"] = {"command": str(peers_python), "args": args}
    config = workdir / "toolman.json"
    config.write_text(json.dumps({"servers": servers}))
    port = free_port()
    command = [str(find_script("toolman", "toolman")), "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with (workdir / "toolman.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"toolman exited: {(workdir / 'toolman.log').read_text()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/ready")
                return connection.getresponse().status == 200
            except OSError:
                return False

        wait_until(ready, "toolman was not ready")
        yield f"http://127.0.0.1:{port}/mcp", with_time
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- raw clients --------------------------------------------------------------------------


class RawHttp:
    """A keep-alive HTTP/1.1 MCP client with no framework: toolman's own latency floor."""

    def __init__(self, url: str) -> None:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        self.headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        answer, headers = self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT_PARAMS}
        )
        self.headers["Mcp-Session-Id"] = headers["mcp-session-id"]
        self.headers["MCP-Protocol-Version"] = answer["result"]["protocolVersion"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, message: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        self.connection.request("POST", "/mcp", json.dumps(message), self.headers)
        response = self.connection.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return (json.loads(body) if body else {}), headers

    def request(self, request_id: int, method: str, params: dict[str, Any] | None) -> None:
        answer, _ = self.post(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        )
        expect(answer.get("id") == request_id and "result" in answer, f"bad answer {answer}")

    def close(self) -> None:
        self.connection.close()


class RawWrapper:
    """One JSON line in, one line out, on the wrapper's pipes."""

    def __init__(self, url: str) -> None:
        env = os.environ | {"MCP_TOOLMAN_SERVER_URL": url, "MCP_WRAPPER_TIMEOUT": "10"}
        self.process = subprocess.Popen(
            [str(find_script("mcp_wrapper", "mcp-wrapper"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.request(0, "initialize", INIT_PARAMS)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, request_id: int, method: str, params: dict[str, Any] | None) -> None:
        assert self.process.stdout is not None
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        answer = json.loads(self.process.stdout.readline())
        expect(answer.get("id") == request_id and "result" in answer, f"bad answer {answer}")

    def rss_mb(self) -> tuple[float, float]:
        return proc_memory(self.process.pid)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


def proc_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def time_requests(
    client: RawHttp | RawWrapper, method: str, params: dict[str, Any] | None, count: int
) -> list[float]:
    samples = []
    for n in range(1, count + 1):
        started = time.perf_counter()
        client.request(n, method, params)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# -- SDK clients --------------------------------------------------------------------------


def sdk_samples(
    url: str, via_wrapper: bool, calls: list[tuple[str, dict[str, Any] | None]], count: int
) -> dict[str, list[float]]:
    """Latencies of the SDK client: over Streamable HTTP, or over stdio through the wrapper."""
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    results: dict[str, list[float]] = {}

    async def measure(session: ClientSession) -> None:
        await session.initialize()
        for method, params in calls:
            samples: list[float] = []
            for _ in range(count):
                started = time.perf_counter()
                if method == "ping":
                    await session.send_ping()
                else:
                    assert params is not None
                    await session.call_tool(params["name"], params["arguments"])
                samples.append((time.perf_counter() - started) * 1000)
            results[method] = samples

    async def main() -> None:
        with anyio.fail_after(DEADLINE * 4):
            if via_wrapper:
                server = StdioServerParameters(
                    command=str(find_script("mcp_wrapper", "mcp-wrapper")),
                    env={"MCP_TOOLMAN_SERVER_URL": url},
                )
                with open(os.devnull, "w") as errlog:
                    async with (
                        stdio_client(server, errlog=errlog) as (read, write),
                        ClientSession(read, write) as session,
                    ):
                        await measure(session)
            else:
                async with (
                    streamable_http_client(url) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await measure(session)

    anyio.run(main)
    return results


# -- start-up -----------------------------------------------------------------------------


def startup_ms(url: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(find_script("mcp_wrapper", "mcp-wrapper"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"MCP_TOOLMAN_SERVER_URL": url},
    )
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("pipes missing")
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()
    answer = json.loads(process.stdout.readline())
    elapsed = (time.perf_counter() - started) * 1000
    expect("result" in answer, f"initialize failed: {answer}")
    process.stdin.close()
    process.wait(timeout=DEADLINE)
    process.stdout.close()
    return elapsed


def bare_startup_ms() -> float:
    """Spawn to first answered line for a bare interpreter: the floor for any Python process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", BARE_ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("pipes missing")
    process.stdin.write(b"{}\n")
    process.stdin.flush()
    process.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    process.wait(timeout=DEADLINE)
    process.stdout.close()
    process.stdin.close()
    return elapsed


def bare_rss_mb() -> float:
    process = subprocess.Popen(
        [sys.executable, "-c", BARE_ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        time.sleep(0.3)  # let the interpreter finish starting; it then blocks on stdin
        return proc_memory(process.pid)[0]
    finally:
        stop(process)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


# -- the run ------------------------------------------------------------------------------


def run(quick: bool) -> Report:
    rounds = 2 if quick else 5
    count = 60 if quick else 400
    warmup = 10 if quick else 50
    report = Report(rounds, count)
    with (
        tempfile.TemporaryDirectory(prefix="wrapper-bench-") as tmp,
        toolman(Path(tmp)) as (url, with_time),
    ):
        calls: list[tuple[str, dict[str, Any] | None]] = [("ping", None)]
        if with_time:
            calls.append(("tools/call", TIME_CALL))
        per_round: dict[str, list[tuple[float, float, float, float]]] = {}
        peak_rss: list[tuple[float, float]] = []
        for round_number in range(rounds):
            direct, wrapped = RawHttp(url), RawWrapper(url)
            try:
                for method, params in calls:
                    pair: list[RawHttp | RawWrapper] = [direct, wrapped]
                    if round_number % 2:
                        pair.reverse()
                    samples: dict[int, list[float]] = {}
                    for client in pair:
                        time_requests(client, method, params, warmup)
                        samples[id(client)] = time_requests(client, method, params, count)
                    d, w = samples[id(direct)], samples[id(wrapped)]
                    per_round.setdefault(f"raw {method}", []).append(
                        (
                            percentile(d, 0.5),
                            percentile(w, 0.5),
                            percentile(d, 0.99),
                            percentile(w, 0.99),
                        )
                    )
                peak_rss.append(wrapped.rss_mb())
            finally:
                direct.close()
                wrapped.close()
            order = [False, True] if round_number % 2 == 0 else [True, False]
            sdk: dict[bool, dict[str, list[float]]] = {}
            for via in order:
                sdk[via] = sdk_samples(url, via, calls, count)
            for method, _ in calls:
                d, w = sdk[False][method], sdk[True][method]
                per_round.setdefault(f"sdk {method}", []).append(
                    (
                        percentile(d, 0.5),
                        percentile(w, 0.5),
                        percentile(d, 0.99),
                        percentile(w, 0.99),
                    )
                )
        for name, values in per_round.items():
            columns = list(zip(*values, strict=True))
            d50, w50, d99, w99 = (statistics.median(column) for column in columns)
            report.rows.append(Row(name, d50, w50, d99, w99))
        report.rss_mb = statistics.median(rss for rss, _ in peak_rss)
        report.peak_rss_mb = max(peak for _, peak in peak_rss)
        starts = 3 if quick else 10
        report.startup_ms = statistics.median(startup_ms(url) for _ in range(starts))
        report.bare_startup_ms = statistics.median(bare_startup_ms() for _ in range(starts))
        report.bare_rss_mb = bare_rss_mb()
    return report


def render(report: Report) -> str:
    lines = [
        f"mcp-wrapper bench: {report.rounds} rounds x {report.requests_per_round} requests, "
        f"medians of per-round percentiles, python {sys.version.split()[0]}",
        "",
        f"{'':<16}{'direct p50':>11}{'wrapper p50':>13}{'added p50':>11}{'ratio':>7}"
        f"{'direct p99':>12}{'wrapper p99':>13}{'added p99':>11}",
    ]
    for row in report.rows:
        ratio = row.via_p50_ms / row.direct_p50_ms if row.direct_p50_ms else float("nan")
        lines.append(
            f"{row.name:<16}{row.direct_p50_ms:>8.3f} ms{row.via_p50_ms:>10.3f} ms"
            f"{row.added_p50_ms:>+8.3f} ms{ratio:>6.2f}x{row.direct_p99_ms:>9.3f} ms"
            f"{row.via_p99_ms:>10.3f} ms{row.added_p99_ms:>+8.3f} ms"
        )
    startup_ratio = report.startup_ms / report.bare_startup_ms
    rss_ratio = report.rss_mb / report.bare_rss_mb
    raw_added = max(row.added_p50_ms for row in report.rows if row.name.startswith("raw"))
    lines += [
        "",
        f"start-up to first answered initialize: {report.startup_ms:.1f} ms "
        f"(bare python answering one line: {report.bare_startup_ms:.1f} ms, {startup_ratio:.2f}x)",
        f"wrapper RSS: {report.rss_mb:.1f} MB, peak {report.peak_rss_mb:.1f} MB "
        f"(bare python: {report.bare_rss_mb:.1f} MB, {rss_ratio:.2f}x)",
        "",
        "goals: p50 added <= 1 ms: "
        + ("met" if raw_added <= 1.0 else "MISSED")
        + f" ({raw_added:+.3f} ms, raw rows); start-up <= 300 ms: "
        + ("met" if report.startup_ms <= 300 else "MISSED")
        + "; RSS <= 30 MB: "
        + ("met" if report.peak_rss_mb <= 30 else "MISSED"),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 short rounds instead of 5 (a smoke run)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    report = run(args.quick)
    print(render(report))
    if args.json:
        data = asdict(report)
        for row, raw in zip(report.rows, data["rows"], strict=True):
            raw["added_p50_ms"], raw["added_p99_ms"] = row.added_p50_ms, row.added_p99_ms
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
