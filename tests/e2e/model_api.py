"""A scripted Anthropic Messages API: the one fake of the Claude Code end-to-end tests.

No model API is reachable from the machines the tests run on, but Claude Code reads
``ANTHROPIC_BASE_URL``: pointed here, the real Claude Code binary runs its real tools (MCP
through mcp-wrapper and toolman) on the answers this server scripts. Standard library only,
so the same file runs in-process (``with ModelAPI.start() as api: api.url``) and as
``python3 model_api.py --host 0.0.0.0 --port 8000`` in a bare ``python:3.11-slim`` container.

A marker anywhere in the user's prompt picks the scenario; its options are a JSON object
(``marker("tool", tool=..., args=...)`` writes one)::

    [[scenario:text {"text": "hello"}]]              answer the text, end_turn
    [[scenario:tool {"tool": "mcp__toolman__time_get_current_time", "args": {}}]]
    [[scenario:hold {"tool": "...", "args": {}, "key": "run-1", "timeout": 120}]]
    [[scenario:error {"status": 400, "message": "scripted error"}]]

``tool`` answers with a ``tool_use`` of ``tool`` (input ``args``) until a request carries
tool results; then with ``text`` (default ``done``) and, one per line, each result's text.
``hold`` is ``tool`` but waits before that final answer until ``POST
/_control/release/<key>`` (default key ``default``), the client hangs up, or ``timeout``
seconds (default 120) pass. ``error`` answers HTTP ``status`` with an Anthropic error body
(``invalid_request_error`` for 400). No marker: the start-up scenario (``--scenario``,
``--options``; default ``text``).

Only the main agent's turns are scripted. Claude Code also sends ``HEAD /api/hello`` (unless
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` is set), and may send helper requests (titles,
summaries) which either offer no tools or end in a new user instruction; they get ``ok``. So
a ``POST /v1/messages`` is the main agent's when it offers tools and its last user turn is
the first one (the prompt) or carries tool results.

Control: ``GET /_control/requests`` lists every request (fields: method, path, model,
stream, main, system, tools, messages, tool_results, scenario, key, answer, hold);
``GET /_control/holds`` the keys held now; ``POST /_control/release/<key>``.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

MARKER = re.compile(r"\[\[scenario:(text|tool|hold|error)(?:\s+(\{.*?\}))?\]\]", re.DOTALL)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}
SHORT = 300  # characters of long texts kept in records
Record = dict[str, Any]


def marker(scenario: str, **options: Any) -> str:
    """The prompt marker that picks `scenario` with `options`."""
    return f"[[scenario:{scenario} {json.dumps(options)}]]"


def text_of(content: Any) -> str:
    """The text of a message's, system prompt's or tool result's content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            text_of(b.get("text", b.get("content"))) for b in content if isinstance(b, dict)
        )
    return ""


def result_of(block: dict[str, Any]) -> Record:
    content, failed = text_of(block.get("content")), bool(block.get("is_error"))
    return {"tool_use_id": block.get("tool_use_id"), "is_error": failed, "content": content}


def summary(message: dict[str, Any]) -> str:
    blocks = message.get("content")
    parts = []
    for block in blocks if isinstance(blocks, list) else [{"type": "text", "text": blocks}]:
        if block.get("type") == "tool_use":
            parts.append(f"tool_use {block.get('name')} {json.dumps(block.get('input'))}")
        else:
            parts.append(f"{block.get('type')} {text_of([block])[:SHORT]}")
    return f"{message.get('role')}: " + " | ".join(parts)


def hung_up(client: socket.socket) -> bool:
    """Whether the client closed its end (readable, and no data to peek at)."""
    try:
        return bool(select.select([client], [], [], 0)[0]) and not client.recv(1, socket.MSG_PEEK)
    except OSError:
        return True


class ModelAPI:
    """The server on a background thread: ``with ModelAPI.start() as api: ... api.requests()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        scenario: str = "text",
        options: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.host, self.verbose = host, verbose
        self.default: dict[str, Any] = {"scenario": scenario, **(options or {})}
        self._records: list[Record] = []
        self._releases: dict[str, threading.Event] = {}
        self._held: set[str] = set()
        self._changed = threading.Condition(threading.RLock())
        self._ids = count(1)
        self.server = _Server((host, port), _Handler)
        self.server.api = self

    @classmethod
    @contextmanager
    def start(cls, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[ModelAPI]:
        api = cls(host, port, **options)
        threading.Thread(target=api.server.serve_forever, daemon=True).start()
        try:
            yield api
        finally:
            api.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def requests(self) -> list[Record]:
        with self._changed:
            return [dict(record) for record in self._records]

    def holding(self) -> list[str]:
        with self._changed:
            return sorted(self._held)

    def release(self, key: str) -> None:
        """Let the run held under `key` answer (a release before the hold counts too)."""
        self._release(key).set()

    def wait(self, condition: Callable[[ModelAPI], bool], timeout: float) -> None:
        """Return once `condition(self)` holds, re-checked on every request and hold change."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise TimeoutError(f"not within {timeout} s; requests: {self._records}")

    def close(self) -> None:
        with self._changed:
            for event in self._releases.values():
                event.set()
        self.server.shutdown()
        self.server.server_close()

    def _release(self, key: str) -> threading.Event:
        with self._changed:
            return self._releases.setdefault(key, threading.Event())

    def _record(self, record: Record, **fields: Any) -> None:
        with self._changed:
            record.update(fields)
            if not any(r is record for r in self._records):
                self._records.append(record)
            self._changed.notify_all()

    def _hold(self, key: str, timeout: float, client: socket.socket) -> str:
        event = self._release(key)
        with self._changed:
            self._held.add(key)
            self._changed.notify_all()
        try:
            for _ in range(max(1, int(timeout * 10))):
                if event.wait(0.1):
                    return "released"
                if hung_up(client):
                    return "client_gone"
            return "timeout"
        finally:
            with self._changed:
                self._held.discard(key)
                self._changed.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ModelAPI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def api(self) -> ModelAPI:
        assert isinstance(self.server, _Server)
        return self.server.api

    def log_message(self, format: str, *args: Any) -> None:
        if self.api.verbose:
            super().log_message(format, *args)

    def handle_one_request(self) -> None:
        with suppress(ConnectionError):  # Claude Code hung up (cancelled): nothing to answer
            super().handle_one_request()

    def do_HEAD(self) -> None:
        self.api._record({"method": "HEAD", "path": self.path})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/_control/requests":
            return self._json(200, self.api.requests())
        if self.path == "/_control/holds":
            return self._json(200, self.api.holding())
        self.api._record({"method": "GET", "path": self.path})
        return self._json(200, {})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_control/release/"):
            key = self.path.removeprefix("/_control/release/")
            self.api.release(key)
            return self._json(200, {"released": key})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "the request body is not JSON")
        record: Record = {
            "method": "POST",
            "path": self.path,
            "model": body.get("model"),
            "stream": bool(body.get("stream")),
        }
        self.api._record(record)
        endpoint = self.path.split("?")[0]
        if endpoint == "/v1/messages/count_tokens":
            return self._json(200, {"input_tokens": len(raw) // 4})
        if endpoint != "/v1/messages":
            return self._error(404, f"no endpoint {endpoint}")
        self._messages(body, record)

    def _messages(self, body: dict[str, Any], record: Record) -> None:
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        users = [m.get("content") for m in messages if m.get("role") == "user"]
        last = users[-1] if users and isinstance(users[-1], list) else []
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
        tools = [t.get("name") for t in body.get("tools") or []]
        self.api._record(
            record,
            main=bool(tools) and (len(users) == 1 or bool(results)),
            system=text_of(body.get("system"))[:SHORT],
            tools=tools,
            messages=[summary(m) for m in messages],
            tool_results=[result_of(block) for block in results],
        )
        if not record["main"]:
            return self._answer(body, record, [{"type": "text", "text": "ok"}], "end_turn")
        found = MARKER.search("\n".join(text_of(content) for content in users))
        try:
            options = json.loads(found.group(2) or "{}") if found else self.api.default
            scenario = {"scenario": found.group(1), **options} if found else dict(options)
            if scenario["scenario"] in ("tool", "hold") and not scenario.get("tool"):
                raise ValueError(f"{scenario['scenario']} needs a tool")
        except (ValueError, TypeError) as error:
            return self._error(400, f"bad scenario marker: {error}", record)
        name, key = scenario["scenario"], str(scenario.get("key", "default"))
        self.api._record(record, scenario=name, key=key)
        if name == "error":
            message = str(scenario.get("message", "scripted error"))
            return self._error(int(scenario.get("status", 400)), message, record)
        text = str(scenario.get("text", "done"))
        if name in ("tool", "hold") and not results:
            block = {
                "type": "tool_use",
                "id": f"toolu_{next(self.api._ids):020d}",
                "name": str(scenario.get("tool")),
                "input": scenario.get("args", {}),
            }
            return self._answer(body, record, [block], "tool_use")
        if name == "hold":
            outcome = self.api._hold(key, float(scenario.get("timeout", 120)), self.connection)
            self.api._record(record, hold=outcome)
        final = "\n".join([text, *(r["content"] for r in record["tool_results"])])
        self._answer(body, record, [{"type": "text", "text": final}], "end_turn")

    def _answer(self, body: dict[str, Any], record: Record, blocks: list[Any], stop: str) -> None:
        self.api._record(record, answer=blocks[0]["type"])
        message = {
            "id": f"msg_{next(self.api._ids):020d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or "scripted",
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
        if not body.get("stream"):
            return self._json(200, message)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._event("message_start", message={**message, "content": [], "stop_reason": None})
        for index, block in enumerate(blocks):
            if block["type"] == "tool_use":
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            else:
                start, delta = (
                    {"type": "text", "text": ""},
                    {"type": "text_delta", "text": block["text"]},
                )
            self._event("content_block_start", index=index, content_block=start)
            self._event("content_block_delta", index=index, delta=delta)
            self._event("content_block_stop", index=index)
        self._event(
            "message_delta",
            delta={"stop_reason": stop, "stop_sequence": None},
            usage={"output_tokens": 1},
        )
        self._event("message_stop")

    def _event(self, kind: str, **data: Any) -> None:
        self.wfile.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())
        self.wfile.flush()

    def _error(self, status: int, message: str, record: Record | None = None) -> None:
        if record is not None:
            self.api._record(record, answer=f"error {status}")
        kind = ERROR_TYPES.get(status, "api_error")
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _json(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A scripted Anthropic Messages API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--scenario",
        choices=("text", "tool", "hold", "error"),
        default="text",
        help="for prompts without a marker",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        help='its options as JSON, e.g. \'{"text": "hi"}\'',
    )
    args = parser.parse_args(argv)
    api = ModelAPI(args.host, args.port, scenario=args.scenario, options=args.options, verbose=True)
    print(f"model_api: listening on {api.url}", flush=True)
    with suppress(KeyboardInterrupt):
        api.server.serve_forever()


if __name__ == "__main__":
    main()
