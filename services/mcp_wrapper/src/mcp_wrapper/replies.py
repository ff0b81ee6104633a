"""toolman's HTTP answers turned into JSON-RPC messages, or into errors that say what to fix."""

from __future__ import annotations

import contextlib
import json

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import UpstreamHTTPError, UpstreamProtocolError
from mcp_wrapper.http11 import Response


def error_reply(
    response: Response, body: bytes, request_id: jsonrpc.RequestId, url: str
) -> jsonrpc.Message:
    """The answer to a request that got a non-2xx status (or 202), or the error to raise.

    A JSON-RPC error in the body is toolman's own answer: pass it on with the
    request's id (the server may have sent null); anything else is an HTTP error.
    """
    found = rpc_error(body)
    if found is None or response.status == 202:
        raise status_error(response, body, url)
    if response.status in (401, 403):  # the server's words, and which setting to fix
        error = found["error"]
        hint = f"(HTTP {response.status}; check MCP_TOOLMAN_TOKEN)"
        found = {**found, "error": {**error, "message": f"{error.get('message')} {hint}"}}
    return {**found, "id": request_id}


def parse_message(body: bytes) -> jsonrpc.Message:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise UpstreamProtocolError(f"toolman's answer is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UpstreamProtocolError("toolman's answer is not a JSON-RPC object")
    return value


def rpc_error(body: bytes) -> jsonrpc.Message | None:
    with contextlib.suppress(ValueError):
        value = json.loads(body)
        if isinstance(value, dict) and isinstance(value.get("error"), dict):
            return value
    return None


def status_error(response: Response, body: bytes, url: str) -> UpstreamHTTPError:
    status = response.status
    detail = ""
    if (found := rpc_error(body)) is not None:
        detail = f": {found['error'].get('message', '')}"
    elif body.strip():
        detail = f": {body[:200].decode('utf-8', errors='replace').strip()}"
    hint = ""
    if status in (401, 403):
        hint = " (check MCP_TOOLMAN_TOKEN)"
    elif status in (404, 405) or 300 <= status < 400:
        hint = f" (is MCP_TOOLMAN_SERVER_URL={url} toolman's MCP endpoint?)"
    elif status == 202:
        detail = ": 202 Accepted to a request, so no response will come"
    message = f"toolman answered HTTP {status} {response.reason}{detail}{hint}"
    return UpstreamHTTPError(message, status=status)
