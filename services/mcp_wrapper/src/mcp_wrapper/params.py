"""``Mcp-Param-*`` headers (2026-07-28): tool arguments a server asked to see as headers.

A tool's input schema may mark a property with ``"x-mcp-header": "Region"``;
a 2026-era ``tools/call`` of that tool then carries ``Mcp-Param-Region: <the
argument's value>`` beside the body, so gateways and load balancers can route
on it. The wrapper learns the marks from the 2026-era ``tools/list`` answers it
forwards and adds the headers to later calls. Strings that would not survive a
header are base64-wrapped like ``Mcp-Name``; numbers and booleans are written
as JSON writes them; objects, arrays and absent arguments add nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from mcp_wrapper import jsonrpc
from mcp_wrapper.headers import HEADER_SAFE, encode_header_value

Path = tuple[str, ...]
MAX_DEPTH = 8


def _marks(schema: object, path: Path = ()) -> Iterator[tuple[Path, str]]:
    if not isinstance(schema, dict) or len(path) > MAX_DEPTH:
        return
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, child in properties.items():
        if not isinstance(child, dict):
            continue
        header = child.get("x-mcp-header")
        if isinstance(header, str) and HEADER_SAFE.fullmatch(header) and " " not in header:
            yield (*path, name), header
        yield from _marks(child, (*path, name))


def _value(arguments: object, path: Path) -> object:
    for key in path:
        if not isinstance(arguments, dict) or key not in arguments:
            return None
        arguments = arguments[key]
    return arguments


def _render(value: object) -> str | None:
    if isinstance(value, str):
        return encode_header_value(value)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


class ParamHeaders:
    """What each tool asked for, as last listed."""

    def __init__(self) -> None:
        self._tools: dict[str, tuple[tuple[Path, str], ...]] = {}

    def learn(self, answer: jsonrpc.Message) -> None:
        """Take the marks of every tool in a ``tools/list`` answer (one page of it)."""
        result = answer.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                self._tools[tool["name"]] = tuple(_marks(tool.get("inputSchema")))

    def for_call(self, message: jsonrpc.Message) -> dict[str, str]:
        params = message.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return {}
        headers = {}
        for path, header in self._tools.get(params["name"], ()):
            rendered = _render(_value(params.get("arguments"), path))
            if rendered is not None:
                headers[f"Mcp-Param-{header}"] = rendered
        return headers
