"""A small MCP server written with the official SDK: toolman's test downstream.

Run with the peers venv's python (see ci/install-mcp-peers.sh):
    python sdk_server.py                 # stdio
    python sdk_server.py --http PORT [--json-response]   # Streamable HTTP on 127.0.0.1:PORT/mcp

TEST_SERVER_EXTRA_TOOLS="a,b" adds trivial tools with those exact names, each
answering "extra <its name>", so tests can exercise name mapping with names a
client would reject and see which tool a mapped name reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable

import mcp_types as types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("toolman-test-server", version="1.0.0")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def pid() -> int:
    """The process id of this server (tests use it to kill -9 it)."""
    return os.getpid()


@server.tool()
def fail(message: str) -> str:
    """Always fails with the given message (a tool error, not a protocol error)."""
    raise ToolError(message)


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer; used for timeouts and cancellation."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
async def sleep_pid(seconds: float) -> int:
    """Sleep, then answer with this process's id (which pool member served the call)."""
    await asyncio.sleep(seconds)
    return os.getpid()


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Report progress once per step, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await asyncio.sleep(0.01)
    return f"counted {steps}"


@server.tool()
def protocol(ctx: Context) -> str:
    """The protocol revision of the request this answers (2026-07-28 or a session's)."""
    return ctx.protocol_version or "unknown"


@server.tool()
def client_capabilities(ctx: Context) -> list[str]:
    """The capability names the client declared to this server (sorted)."""
    declared = ctx.client_capabilities
    return sorted(declared.model_dump(exclude_none=True)) if declared else []


@server.tool()
def confirm(question: str, ctx: Context) -> str | types.InputRequiredResult:
    """Ask the client for a name the 2026-07-28 way (input_required), then greet it."""
    answer = (ctx.input_responses or {}).get("name")
    if isinstance(answer, types.ElicitResult) and answer.content:
        return f"confirmed by {answer.content.get('name')} (state {ctx.request_state})"
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    asking = types.ElicitRequestFormParams(message=question, requested_schema=schema)
    return types.InputRequiredResult(
        input_requests={"name": types.ElicitRequest(params=asking)}, request_state="asked"
    )


@server.resource("test://greeting")
def greeting() -> str:
    """A fixed greeting."""
    return "hello from the test server"


@server.resource("test://items/{item_id}")
def item(item_id: str) -> str:
    """One item by id."""
    return f"item {item_id}"


@server.resource("test://asking/{question}")
def asking(question: str, ctx: Context) -> str | types.InputRequiredResult:
    """A read that asks the client for a name first (input_required, 2026-07-28 only)."""
    answer = (ctx.input_responses or {}).get("name")
    if isinstance(answer, types.ElicitResult) and answer.content:
        return f"{question} answered by {answer.content.get('name')}"
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    asked = types.ElicitRequestFormParams(message=question, requested_schema=schema)
    return types.InputRequiredResult(
        input_requests={"name": types.ElicitRequest(params=asked)}, request_state="asked"
    )


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Please greet {name} warmly."


def _extra_tool(name: str) -> Callable[[], str]:
    def extra() -> str:
        return f"extra {name}"

    return extra


def _add_extra_tools() -> None:
    for raw in os.environ.get("TEST_SERVER_EXTRA_TOOLS", "").split(","):
        name = raw.strip()
        if name:
            server.add_tool(_extra_tool(name), name=name, description=f"extra tool {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP")
    parser.add_argument("--json-response", action="store_true", help="HTTP: JSON, not SSE")
    args = parser.parse_args()
    _add_extra_tools()
    if args.http:
        server.run(
            "streamable-http", host="127.0.0.1", port=args.http, json_response=args.json_response
        )
    else:
        server.run()


if __name__ == "__main__":
    main()
