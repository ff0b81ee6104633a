"""The benchmarks' MCP clients: minimal raw ones and the SDK's.

The raw ones spend 60-110 us of CPU per call (toolman_bench's clients' column).
RawHttp speaks JSON-RPC over one keep-alive HTTP/1.1 connection, in either era;
RawStdio runs the server as a child and multiplexes requests on its pipes. An
Opener opens N clients of one kind and returns one call per client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
PEER_PYTHON = PEERS / "venv" / "bin" / "python"
SDK_SERVER = REPO / "services" / "toolman" / "tests" / "peers" / "sdk_server.py"
ARGUMENTS = {"text": "x" * 64}
INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "1"},
}

Call = Callable[[], Awaitable[None]]
Opener = Callable[[AsyncExitStack, int], Awaitable[list[Call]]]


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
