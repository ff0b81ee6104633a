"""JSON-RPC 2.0 framing: parse and classify what a client sent, build what goes back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from toolman.errors import INVALID_REQUEST, PARSE_ERROR, RpcError

RequestId = str | int


@dataclass(slots=True)
class Incoming:
    kind: Literal["request", "notification", "response"]
    id: RequestId | None
    method: str
    params: dict[str, Any]


def loads(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


def _valid_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def classify(message: object) -> Incoming:
    """One JSON-RPC message; RpcError(INVALID_REQUEST) names what is wrong with it."""
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "Invalid Request: a message must be a JSON object")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    has_id = "id" in message
    if has_id and not _valid_id(message["id"]):
        raise RpcError(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
    request_id = message.get("id")
    method = message.get("method")
    if method is None:
        if has_id and ("result" in message) != ("error" in message):
            # A client's answer to a request of toolman's: its result or error as params.
            payload = {key: message[key] for key in ("result", "error") if key in message}
            return Incoming("response", request_id, "", payload)
        raise RpcError(INVALID_REQUEST, 'Invalid Request: no "method"')
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string')
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise RpcError(INVALID_REQUEST, 'Invalid Request: "params" must be an object')
    return Incoming("request" if has_id else "notification", request_id, method, params)


def request_id_of(message: object) -> RequestId | None:
    """The id of a message that failed validation, when it has a usable one."""
    if isinstance(message, dict) and _valid_id(message.get("id")):
        return message["id"]  # type: ignore[no-any-return]
    return None


def result(request_id: RequestId | None, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: RequestId | None, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": exc.to_json()}


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message
