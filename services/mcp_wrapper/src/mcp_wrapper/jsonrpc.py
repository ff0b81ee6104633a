"""JSON-RPC 2.0 message shapes as the wrapper sees them: classify, build errors, encode.

The wrapper forwards messages verbatim; it only needs to know which of the
three kinds a message is (request, notification, response) to route it, and
how to answer on the upstream's behalf when toolman cannot.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Final

Message = dict[str, Any]
RequestId = str | int

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
INTERNAL_ERROR: Final = -32603
# The MCP SDKs use -32000 for "connection closed" and -32001 for "request timeout";
# reusing them lets clients that special-case those codes recognise ours.
UPSTREAM_ERROR: Final = -32000
REQUEST_TIMEOUT: Final = -32001

# A 2026-era ("modern", stateless) request names its protocol version in params._meta.
PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"
# Methods whose parameter is mirrored into the Mcp-Name header on 2026-era requests.
NAME_BEARING_METHODS: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# The spec forbids cancelling these.
UNCANCELLABLE_METHODS: Final = frozenset({"initialize", "server/discover"})
# Why a batch (a JSON array line) is refused. toolman still takes batches on 2025-03-26
# sessions, but every client of the current protocol sends one message per line.
BATCH_REMOVED: Final = (
    "JSON-RPC batches are not supported: batches were removed in MCP 2025-06-18; "
    "send one message per line"
)


class ParseError(ValueError):
    """A stdin line that is not a JSON text the wrapper can forward unchanged."""

    def __init__(self, reason: str, *, request_id: RequestId | None = None) -> None:
        super().__init__(reason)
        self.request_id = request_id


class Kind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


class InvalidMessage(ValueError):
    """Valid JSON that is not a JSON-RPC message the wrapper can route."""

    def __init__(self, reason: str, *, request_id: RequestId | None = None) -> None:
        super().__init__(reason)
        self.request_id = request_id


def _valid_id(value: object) -> bool:
    # bool is an int subclass but never a valid id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def classify(value: object) -> Kind:
    """Say what kind of message ``value`` is, or raise InvalidMessage naming the problem."""
    if isinstance(value, list):
        raise InvalidMessage(BATCH_REMOVED)
    if not isinstance(value, dict):
        raise InvalidMessage("a JSON-RPC message must be a JSON object")
    raw_id = value.get("id")
    request_id = raw_id if _valid_id(raw_id) else None
    method = value.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise InvalidMessage("'method' must be a string", request_id=request_id)
        if "id" not in value:
            return Kind.NOTIFICATION
        if request_id is None:
            raise InvalidMessage("a request 'id' must be a string or an integer")
        return Kind.REQUEST
    if ("result" in value or "error" in value) and "id" in value:
        return Kind.RESPONSE
    raise InvalidMessage(
        "not a request, notification or response (no 'method', no 'result'/'error')",
        request_id=request_id,
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def parse(line: bytes) -> object:
    """One stdin line as a JSON value, or ParseError saying why it cannot be forwarded.

    Stricter than ``json.loads``: ``NaN``/``Infinity`` are rejected (RFC 8259 has no
    such literals), and so are lone surrogate escapes such as ``"\\ud800"``, which
    decode to a str that cannot be encoded as UTF-8 again. The error carries the
    request's id when the line still yields a usable one.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"Parse error: the line is not UTF-8: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ParseError(f"Parse error: {exc}", request_id=_lenient_id(text)) from None
    if "\\u" in text and not _encodable(value):  # only an escape can make a lone surrogate
        raise ParseError(
            "Parse error: the message contains a lone surrogate escape (\\ud800-\\udfff), "
            "which is not Unicode text",
            request_id=_usable_id(value),
        )
    return value


def _encodable(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _usable_id(value: object) -> RequestId | None:
    if not isinstance(value, dict):
        return None
    request_id = value.get("id")
    return request_id if _valid_id(request_id) and _encodable(request_id) else None


def _lenient_id(text: str) -> RequestId | None:
    # The strict parse failed; a lenient one (NaN allowed) may still show the id.
    try:
        return _usable_id(json.loads(text))
    except ValueError:
        return None


def batch_refusal(batch: list[object]) -> Message | list[Message]:
    """The answer to a batch: one -32600 per request in it, so none goes unanswered.

    A batch without requests (empty, or only notifications) gets one -32600 with id null.
    """
    requests = [item for item in batch if isinstance(item, dict) and "method" in item]
    ids = [found for item in requests if (found := _usable_id(item)) is not None]
    if not ids:
        return error_response(None, INVALID_REQUEST, BATCH_REMOVED)
    return [error_response(request_id, INVALID_REQUEST, BATCH_REMOVED) for request_id in ids]


def error_response(
    request_id: RequestId | None, code: int, message: str, data: object = None
) -> Message:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def is_response(message: Message) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


def modern_version(message: Message) -> str | None:
    """The 2026-era protocol version a request carries in params._meta, if any."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return None
    version = meta.get(PROTOCOL_VERSION_META_KEY)
    return version if isinstance(version, str) else None


def cancelled_request_id(message: Message) -> RequestId | None:
    """The id a ``notifications/cancelled`` names, if it names a valid one."""
    params = message.get("params")
    if not isinstance(params, dict):
        return None
    request_id = params.get("requestId")
    return request_id if _valid_id(request_id) else None


def id_key(request_id: RequestId) -> tuple[str, RequestId]:
    """A dict key that keeps 1 and "1" apart, as JSON-RPC does."""
    return (type(request_id).__name__, request_id)


def encode_line(message: Message | list[Message]) -> bytes:
    """One message as exactly one UTF-8 line: json.dumps escapes every newline inside strings."""
    return encode_body(message) + b"\n"


def encode_body(message: Message | list[Message]) -> bytes:
    """Compact UTF-8 JSON. Never fails on text: a lone surrogate (say, in toolman's answer)
    falls back to ASCII escapes, which round-trip it as the same JSON value."""
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        return json.dumps(message, separators=(",", ":")).encode()
