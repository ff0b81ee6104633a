"""Lines that parse as JSON yet cannot be forwarded, batches, and the forwarder's safety net:
every request gets exactly one answer, whatever it contains and whatever goes wrong."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fake_toolman import FakeToolman

from mcp_wrapper import jsonrpc
from mcp_wrapper.forwarder import Forwarder
from mcp_wrapper.settings import Settings
from mcp_wrapper.stdio import LineSource, Output

SURROGATE_CALL = (
    b'{"jsonrpc":"2.0","id":"s","method":"tools/call",'
    b'"params":{"name":"echo","arguments":{"text":"\\ud800"}}}\n'
)


def test_a_lone_surrogate_escape_is_answered_with_the_request_id(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.send(SURROGATE_CALL)
    error = wrapper.read_answer("s", timeout=5)["error"]
    assert error["code"] == jsonrpc.PARSE_ERROR
    assert "lone surrogate" in error["message"]
    # A surrogate in the id itself leaves no id to answer with.
    wrapper.send(b'{"jsonrpc":"2.0","id":"\\udc00","method":"ping"}\n')
    assert wrapper.read()["id"] is None
    # A valid surrogate pair is ordinary text and is forwarded.
    wrapper.call_tool("pair", "echo", text="\U0001f600")
    assert wrapper.read_answer("pair")["result"]["content"][0]["text"] == "\U0001f600"
    assert fake.tool_calls == ["echo"]
    assert "Task exception was never retrieved" not in wrapper.stderr
    assert "UnicodeEncodeError" not in wrapper.stderr


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected_not_forwarded(
    fake: FakeToolman, spawn: Any, literal: str
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    line = (
        '{"jsonrpc":"2.0","id":7,"method":"tools/call",'
        f'"params":{{"name":"echo","arguments":{{"x":{literal}}}}}}}\n'
    )
    wrapper.send(line.encode())
    error = wrapper.read_answer(7, timeout=5)["error"]
    assert error["code"] == jsonrpc.PARSE_ERROR
    assert literal.lstrip("-") in error["message"]
    wrapper.request(8, "ping")
    assert wrapper.read_answer(8)["result"] == {}
    assert fake.tool_calls == []


def test_a_batch_answers_each_request_in_it_with_the_reason(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": "b", "method": "tools/list"},
    ]
    wrapper.send(json.dumps(batch).encode() + b"\n")
    answers = wrapper.read_json(timeout=5)
    assert isinstance(answers, list)
    assert [answer["id"] for answer in answers] == [1, "b"]
    for answer in answers:
        assert answer["error"]["code"] == jsonrpc.INVALID_REQUEST
        assert "batches were removed in MCP 2025-06-18" in answer["error"]["message"]
    # A batch with no request in it gets one error with id null.
    wrapper.send(b"[]\n")
    empty = wrapper.read()
    assert empty["id"] is None
    assert "batches were removed in MCP 2025-06-18" in empty["error"]["message"]
    assert fake.messages("ping") == []
    assert fake.messages("tools/list") == []


@pytest.mark.parametrize(
    ("line", "request_id", "reason"),
    [
        (b'{"id": 1, "x": NaN}', 1, "NaN"),
        (b'{"id": 2, "x": [Infinity]}', 2, "Infinity"),
        (b'{"id": "\\ud800", "method": "ping"}', None, "lone surrogate"),
        (b'{"id": 3, "method": "ping", "params": {"\\udfff": 1}}', 3, "lone surrogate"),
        (b'{"id": 4, "method": "ping"', None, "Parse error"),
        (b"\xed\xa0\x80", None, "not UTF-8"),
    ],
)
def test_parse_rejects_what_cannot_be_forwarded(
    line: bytes, request_id: object, reason: str
) -> None:
    with pytest.raises(jsonrpc.ParseError) as caught:
        jsonrpc.parse(line)
    assert caught.value.request_id == request_id
    assert reason in str(caught.value)


def test_parse_accepts_escapes_that_are_text() -> None:
    line = b'{"id": 1, "method": "ping", "params": {"t": "\\ud83d\\ude00 \\u00e9 \\\\ud800"}}'
    assert jsonrpc.parse(line) == {
        "id": 1,
        "method": "ping",
        "params": {"t": "\U0001f600 \u00e9 \\ud800"},
    }


def test_encoding_never_fails_on_a_lone_surrogate() -> None:
    # toolman's answers are not checked on the way in: writing them must still work.
    line = jsonrpc.encode_line({"text": "\ud800 é"})
    assert line.endswith(b"\n")
    assert json.loads(line) == {"text": "\ud800 é"}


class _Collected(Output):
    def __init__(self) -> None:
        super().__init__(None)
        self.messages: list[Any] = []

    async def write(self, message: Any) -> None:
        self.messages.append(message)


class _BrokenUpstream:
    """An upstream with a bug: every request and notification raises."""

    def __init__(self) -> None:
        self.closed = False

    async def request(self, message: jsonrpc.Message) -> jsonrpc.Message:
        raise RuntimeError("a bug in the upstream")

    async def notify(self, message: jsonrpc.Message) -> None:
        raise KeyError("another bug")

    async def close(self) -> None:
        self.closed = True


def test_an_unexpected_exception_still_answers_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> _Collected:
        output = _Collected()
        upstream = _BrokenUpstream()
        forwarder = Forwarder(Settings.from_env({}), upstream, output)  # type: ignore[arg-type]
        reader = asyncio.StreamReader()
        reader.feed_data(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        reader.feed_data(b'{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{}}\n')
        reader.feed_eof()
        async with asyncio.timeout(5):
            await forwarder.run(LineSource(reader))
        assert upstream.closed
        return output

    output = asyncio.run(scenario())
    assert output.messages == [
        {
            "jsonrpc": "2.0",
            "id": "r",
            "error": {
                "code": jsonrpc.INTERNAL_ERROR,
                "message": "mcp-wrapper failed on tools/call: RuntimeError: a bug in the upstream",
            },
        }
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert all("\n" not in e for e in errors)
    assert any("notifications/initialized" in e and "KeyError" in e for e in errors)
    assert any("id=r" in e and "RuntimeError" in e for e in errors)
