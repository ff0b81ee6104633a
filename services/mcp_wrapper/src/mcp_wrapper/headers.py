"""HTTP header values derived from messages: safe values and 2026-era routing headers."""

from __future__ import annotations

import base64
import re

from mcp_wrapper import jsonrpc

# Visible ASCII, inner spaces allowed: what survives an HTTP header round-trip unchanged.
HEADER_SAFE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


def modern_headers(message: jsonrpc.Message, version: str) -> dict[str, str]:
    headers = {"MCP-Protocol-Version": version}
    method = message.get("method")
    if isinstance(method, str) and HEADER_SAFE.fullmatch(method):
        headers["Mcp-Method"] = method
    name_key = jsonrpc.NAME_BEARING_METHODS.get(str(method))
    params = message.get("params")
    if name_key and isinstance(params, dict) and isinstance(name := params.get(name_key), str):
        headers["Mcp-Name"] = encode_header_value(name)
    return headers


def encode_header_value(value: str) -> str:
    """Printable ASCII passes verbatim; anything else is base64-wrapped (the MCP 2026 rule)."""
    if HEADER_SAFE.fullmatch(value) and not value.startswith("=?base64?"):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="
