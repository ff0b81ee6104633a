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
        raise InvalidMessage(
            "JSON-RPC batches are not supported (MCP removed them in 2025-06-18); "
            "send one message per line"
        )
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


def encode_line(message: Message) -> bytes:
    """One message as exactly one UTF-8 line: json.dumps escapes every newline inside strings."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def encode_body(message: Message) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
