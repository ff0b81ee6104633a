"""``mcp-wrapper --check``: can toolman be reached and does it accept ``initialize``?

Meant for image health checks: one initialize, then DELETE of the session it
opened, all within MCP_WRAPPER_TIMEOUT.
"""

from __future__ import annotations

import asyncio

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import UpstreamError
from mcp_wrapper.settings import Settings
from mcp_wrapper.upstream import Upstream

CHECK_PROTOCOL_VERSION = "2025-11-25"


async def check(settings: Settings) -> str:
    """Return a one-line description of toolman, or raise UpstreamError saying what failed."""

    async def ignore(_message: jsonrpc.Message) -> None:
        return None

    from mcp_wrapper import __version__

    initialize = {
        "jsonrpc": "2.0",
        "id": "mcp-wrapper-check",
        "method": "initialize",
        "params": {
            "protocolVersion": CHECK_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-wrapper-check", "version": __version__},
        },
    }
    upstream = Upstream(settings, ignore)
    try:
        async with asyncio.timeout(settings.timeout):
            answer = await upstream.request(initialize)
    except TimeoutError:
        raise UpstreamError(
            f"toolman at {settings.url} did not answer initialize within {settings.timeout:g} s"
        ) from None
    finally:
        await upstream.close()
    result = answer.get("result")
    if not isinstance(result, dict):
        error = answer.get("error")
        reason = error.get("message") if isinstance(error, dict) else "no result"
        raise UpstreamError(f"toolman at {settings.url} refused initialize: {reason}")
    info = result.get("serverInfo")
    info = info if isinstance(info, dict) else {}
    return (
        f"ok: {info.get('name', 'server')} {info.get('version', '')} at {settings.url} "
        f"(protocol {result.get('protocolVersion')})"
    )
