"""A scripted Streamable HTTP MCP server on loopback, for the wrapper's unit tests.

Why a fake and not toolman: these tests need a server that misbehaves on
cue — answers slowly, drops the connection mid-answer, forgets its sessions,
closes an SSE stream before the answer, fails with HTTP 500 — which a correct
server never does. It is still a real HTTP server (uvicorn on 127.0.0.1, in a
thread), so the wrapper's HTTP/1.1 client meets someone else's framing
(chunked SSE, Content-Length JSON, keep-alive). The end-to-end tests in
tests/e2e use the real toolman and real MCP servers.

Tools (``tools/call`` by name): echo, slow {seconds}, progress, drop,
resumable, sample, crash500, rpc_error. Everything received is recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PROTOCOL = "2025-06-18"
MODERN_KEY = "io.modelcontextprotocol/protocolVersion"


@dataclass
class Received:
    http_method: str
    headers: dict[str, str]
    message: dict[str, Any] | None

    @property
    def rpc_method(self) -> str | None:
        return None if self.message is None else self.message.get("method")


class FakeToolman:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.completed: list[Received] = []  # requests whose answer has been sent
        self.sessions: set[str] = set()
        self.answer_with_sse = True
        self.offer_get_stream = False
        self.require_token: str | None = None
        self.tool_calls: list[str] = []
        self.get_streams_opened = 0
        self.fail_initialize = 0  # answer this many initialize requests with HTTP 500
        self.capabilities: dict[str, Any] = {"tools": {}}  # what initialize advertises
        self._pushes: asyncio.Queue[dict[str, Any]] | None = None
        self._client_answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._resume: dict[str, dict[str, Any]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- what tests look at -----------------------------------------------------------

    def messages(self, rpc_method: str) -> list[Received]:
        return [r for r in list(self.received) if r.rpc_method == rpc_method]

    def initialized(self) -> bool:
        """True once an initialized notification has been fully handled."""
        return any(r.rpc_method == "notifications/initialized" for r in list(self.completed))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    def push(self, message: dict[str, Any]) -> None:
        """Send a server-initiated message on the open GET stream."""
        assert self.loop is not None
        assert self._pushes is not None
        self.loop.call_soon_threadsafe(self._pushes.put_nowait, message)

    # -- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.loop = asyncio.get_running_loop()
        if self._pushes is None:
            self._pushes = asyncio.Queue()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        message = json.loads(body) if body else None
        received = Received(scope["method"], headers, message)
        self.received.append(received)
        try:
            await self._handle(scope, headers, message, receive, send)
        finally:
            self.completed.append(received)

    async def _handle(
        self,
        scope: Scope,
        headers: dict[str, str],
        message: dict[str, Any] | None,
        receive: Receive,
        send: Send,
    ) -> None:
        if self.require_token and headers.get("authorization") != f"Bearer {self.require_token}":
            await _plain(send, 401, "missing or wrong bearer token")
            return
        session = headers.get("mcp-session-id")
        if scope["path"] != "/mcp":
            await _plain(send, 404, "Not Found")
        elif scope["method"] == "DELETE":
            self.sessions.discard(session or "")
            await _plain(send, 200, "")
        elif scope["method"] == "GET":
            await self._get(headers, session, receive, send)
        else:
            await self._post(headers, session, message or {}, send)

    async def _get(
        self, headers: dict[str, str], session: str | None, receive: Receive, send: Send
    ) -> None:
        last_event_id = headers.get("last-event-id")
        if last_event_id in self._resume:
            await _sse(send, [("ev-final", self._resume.pop(last_event_id))])
            return
        if not self.offer_get_stream:
            await _plain(send, 405, "no GET stream")
            return
        if session not in self.sessions:
            await _plain(send, 404, "unknown session")
            return
        assert self._pushes is not None
        await _start(send, 200, "text/event-stream")
        self.get_streams_opened += 1
        disconnected = asyncio.ensure_future(receive())
        while not disconnected.done():
            pushed = asyncio.ensure_future(self._pushes.get())
            await asyncio.wait({pushed, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if not pushed.done():
                pushed.cancel()
                return
            await send(
                {
                    "type": "http.response.body",
                    "body": _event(None, pushed.result()),
                    "more_body": True,
                }
            )

    async def _post(
        self, headers: dict[str, str], session: str | None, message: dict[str, Any], send: Send
    ) -> None:
        accept = headers.get("accept", "")
        if "application/json" not in accept or "text/event-stream" not in accept:
            await _plain(send, 406, "Accept must list application/json and text/event-stream")
            return
        method = message.get("method")
        if method == "initialize" and self.fail_initialize > 0:
            self.fail_initialize -= 1
            await _plain(send, 500, "initialize failed on purpose")
            return
        if method == "initialize":
            new_session = uuid.uuid4().hex
            self.sessions.add(new_session)
            result = {
                "protocolVersion": PROTOCOL,
                "capabilities": self.capabilities,
                "serverInfo": {"name": "fake-toolman", "version": "9.9"},
            }
            await self._answer(send, message["id"], result, {"mcp-session-id": new_session})
            return
        meta = (message.get("params") or {}).get("_meta") or {}
        if MODERN_KEY in meta:
            pass  # 2026-era requests are stateless: no session
        elif session is None:
            await _plain(send, 400, "missing Mcp-Session-Id")
            return
        elif session not in self.sessions:
            await _plain(send, 404, "unknown session")
            return
        if "id" not in message or method is None:  # a notification, or the client's answer
            if method is None and str(message.get("id")) in self._client_answers:
                self._client_answers.pop(str(message["id"])).set_result(message)
            await _plain(send, 202, "")
            return
        if method == "ping":
            await self._answer(send, message["id"], {})
        elif method == "tools/list":
            await self._answer(
                send,
                message["id"],
                {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}, REGIONAL]},
            )
        elif method == "tools/call":
            await self._tool(send, message)
        else:
            await self._error(send, message["id"], -32601, f"Method not found: {method}")

    async def _tool(self, send: Send, message: dict[str, Any]) -> None:
        request_id = message["id"]
        name = message["params"]["name"]
        arguments = message["params"].get("arguments") or {}
        self.tool_calls.append(name)
        if name == "echo":
            await self._answer(send, request_id, _text(arguments.get("text", "")))
        elif name == "regional":
            await self._answer(send, request_id, _text(f"regional {arguments.get('region')}"))
        elif name == "slow":
            await asyncio.sleep(float(arguments.get("seconds", 1)))
            await self._answer(send, request_id, _text("slow done"))
        elif name == "progress":
            progress = {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": "p1", "progress": 1, "total": 2},
            }
            await _sse(
                send, [(None, progress), (None, _result(request_id, _text("after progress")))]
            )
        elif name == "drop":
            await _start(send, 200, "text/event-stream")
            await send({"type": "http.response.body", "body": b": started\n\n", "more_body": True})
            raise RuntimeError("fake toolman drops the connection mid-answer")
        elif name == "resumable":
            # A priming event with an id, then the stream closes before the answer (SEP-1699).
            self._resume["ev-1"] = _result(request_id, _text("resumed"))
            await _start(send, 200, "text/event-stream")
            await send({"type": "http.response.body", "body": b"id: ev-1\nretry: 20\ndata:\n\n"})
        elif name == "sample":
            ask = {
                "jsonrpc": "2.0",
                "id": "srv-1",
                "method": "sampling/createMessage",
                "params": {"messages": [], "maxTokens": 5},
            }
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._client_answers["srv-1"] = future
            await _start(send, 200, "text/event-stream")
            await send({"type": "http.response.body", "body": _event(None, ask), "more_body": True})
            answer = await asyncio.wait_for(future, 5)
            text = answer["result"]["content"]["text"]
            await send(
                {
                    "type": "http.response.body",
                    "body": _event(None, _result(request_id, _text(f"sampled {text}"))),
                }
            )
        elif name == "crash500":
            await _plain(send, 500, "Internal Server Error")
        elif name == "rpc_error":
            error = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32602, "message": "bad arguments"},
            }
            await _body(send, 400, "application/json", json.dumps(error).encode())
        else:
            await self._error(send, request_id, -32602, f"Unknown tool: {name}")

    async def _answer(
        self,
        send: Send,
        request_id: Any,
        result: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        message = _result(request_id, result)
        if self.answer_with_sse:
            await _sse(send, [(None, message)], headers)
        else:
            await _body(send, 200, "application/json", json.dumps(message).encode(), headers)

    async def _error(self, send: Send, request_id: Any, code: int, text: str) -> None:
        message = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}}
        await _body(send, 200, "application/json", json.dumps(message).encode())


# A tool whose arguments a 2026-era call also carries as Mcp-Param-* headers.
REGIONAL = {
    "name": "regional",
    "inputSchema": {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limits": {
                "type": "object",
                "properties": {"max": {"type": "integer", "x-mcp-header": "Max"}},
            },
            "note": {"type": "string"},
        },
    },
}


def _text(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


def _result(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _event(event_id: str | None, message: dict[str, Any]) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: message\ndata: {json.dumps(message)}\n\n".encode()


async def _start(
    send: Send, status: int, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", content_type.encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _sse(
    send: Send,
    events: list[tuple[str | None, dict[str, Any]]],
    headers: dict[str, str] | None = None,
) -> None:
    await _start(send, 200, "text/event-stream", headers)
    for event_id, message in events:
        await send(
            {"type": "http.response.body", "body": _event(event_id, message), "more_body": True}
        )
    await send({"type": "http.response.body", "body": b""})


async def _body(
    send: Send, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
) -> None:
    await _start(send, status, content_type, (headers or {}) | {"content-length": str(len(body))})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, text: str) -> None:
    await _body(send, status, "text/plain", text.encode())


class ServerThread:
    """Runs one FakeToolman under uvicorn on 127.0.0.1 in a thread; stoppable and restartable."""

    def __init__(self, app: FakeToolman, port: int = 0) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake toolman did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        assert not self._thread.is_alive(), "the fake toolman did not stop within 10 s"
