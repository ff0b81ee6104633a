"""The 2026-07-28 envelope: which POSTs are of that era, and the checks each must pass.

A request is of the 2026-07-28 era when it carries ``params._meta["io.
modelcontextprotocol/protocolVersion"]``, is a ``server/discover``, or names a
non-2025 revision in ``MCP-Protocol-Version`` (and has no ``Mcp-Session-Id``:
sessions are the 2025 era's). ``check_envelope`` runs the checks in order
(toolman.modern answers each failure with HTTP 400 and the request's id), and
``without_envelope`` is the request as a 2025 downstream takes it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from toolman.errors import RpcError
from toolman.jsonrpc import Incoming
from toolman.methods import SUPPORTED_VERSIONS

MODERN_VERSIONS = ("2026-07-28",)
PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
ENVELOPE_PREFIX = "io.modelcontextprotocol/"
HEADER_MISMATCH = -32020
UNSUPPORTED_VERSION = -32022
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def is_modern(headers: dict[str, str], message: object) -> bool:
    """Whether a (single, parsed) POST body is a 2026-07-28 request."""
    if "mcp-session-id" in headers or not isinstance(message, dict):
        return False
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    if isinstance(meta, dict) and PROTOCOL_VERSION in meta:
        return True
    if message.get("method") == "server/discover":
        return True
    version = headers.get("mcp-protocol-version")
    return (
        version is not None
        and version not in SUPPORTED_VERSIONS
        and "method" in message
        and (message.get("method") != "initialize")
    )


def _header_value(raw: str | None) -> str | None:
    """An ``Mcp-Name`` value; ``=?base64?...?=`` carries one that is not plain ASCII."""
    if raw is None or not (raw.startswith("=?base64?") and raw.endswith("?=")):
        return raw
    try:
        return base64.b64decode(raw[9:-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_envelope(headers: dict[str, str], incoming: Incoming) -> dict[str, Any]:
    """The request's client capabilities, or RpcError for the first check that fails."""
    meta = incoming.params.get("_meta")
    if (
        not isinstance(meta, dict)
        or PROTOCOL_VERSION not in meta
        or CLIENT_CAPABILITIES not in meta
    ):
        raise RpcError(
            -32602,
            f"params._meta must be an object carrying {PROTOCOL_VERSION!r} and "
            f"{CLIENT_CAPABILITIES!r}",
        )
    version = meta[PROTOCOL_VERSION]
    if headers.get("mcp-protocol-version") != version:
        raise RpcError(HEADER_MISMATCH, "MCP-Protocol-Version header does not match _meta")
    if headers.get("mcp-method") != incoming.method:
        raise RpcError(HEADER_MISMATCH, "Mcp-Method header does not match the body's method")
    key = NAMED.get(incoming.method)
    body_name = incoming.params.get(key) if key is not None else None
    if body_name is not None and _header_value(headers.get("mcp-name")) != body_name:
        raise RpcError(HEADER_MISMATCH, f"Mcp-Name header does not match the body's {key!r}")
    if not isinstance(version, str):
        raise RpcError(-32602, "the protocol version in _meta must be a string")
    if version not in MODERN_VERSIONS:
        data = {"supported": list(MODERN_VERSIONS), "requested": version}
        raise RpcError(UNSUPPORTED_VERSION, "Unsupported protocol version", data)
    capabilities = meta[CLIENT_CAPABILITIES]
    return capabilities if isinstance(capabilities, dict) else {}


def without_envelope(incoming: Incoming) -> Incoming:
    """The request as a 2025 downstream takes it: ``_meta`` without the envelope keys."""
    meta = incoming.params["_meta"]
    kept = {key: value for key, value in meta.items() if not key.startswith(ENVELOPE_PREFIX)}
    if kept:
        params = {**incoming.params, "_meta": kept}
    else:
        params = incoming.params.copy()
        del params["_meta"]
    return Incoming(incoming.kind, incoming.id, incoming.method, params)
