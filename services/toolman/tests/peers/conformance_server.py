"""The downstream for the official conformance suite's server scenarios, written with the SDK.

Run with the peers venv's python (see ci/install-mcp-peers.sh):
    python conformance_server.py PORT      # Streamable HTTP on 127.0.0.1:PORT/mcp

It implements what the scenario descriptions of @modelcontextprotocol/conformance
ask for (tools ``test_*``, resources ``test://...``, prompts ``test_*``,
completion, logging level, resource subscriptions). The suite runs once against
it directly and once through toolman in passthrough mode; the two results must
agree (tests/test_conformance.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from typing import Any

import mcp_types as types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage

# The smallest valid PNG (1x1, transparent) and a short silent WAV.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WAV = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
    b"@\x1f\x00\x00@\x1f\x00\x00\x01\x00\x08\x00data\x00\x00\x00\x00"
)
PNG_B64 = base64.b64encode(PNG).decode()

server = MCPServer("conformance-downstream", version="1.0.0")
subscriptions: set[str] = set()


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG_B64, mime_type="image/png")


@server.tool()
def test_simple_text() -> list[types.ContentBlock]:
    """Returns one text block."""
    return [_text("This is a simple text response for testing.")]


@server.tool()
def test_image_content() -> list[types.ContentBlock]:
    """Returns one PNG image."""
    return [_image()]


@server.tool()
def test_audio_content() -> list[types.ContentBlock]:
    """Returns one WAV clip."""
    data = base64.b64encode(WAV).decode()
    return [types.AudioContent(type="audio", data=data, mime_type="audio/wav")]


@server.tool()
def test_embedded_resource() -> list[types.ContentBlock]:
    """Returns an embedded text resource."""
    resource = types.TextResourceContents(
        uri="test://embedded-resource",
        mime_type="text/plain",
        text="This is an embedded resource content.",
    )
    return [types.EmbeddedResource(type="resource", resource=resource)]


@server.tool()
def test_multiple_content_types() -> list[types.ContentBlock]:
    """Returns text, an image and an embedded resource."""
    resource = types.TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=json.dumps({"test": "data", "value": 123}),
    )
    return [
        _text("Multiple content types test:"),
        _image(),
        types.EmbeddedResource(type="resource", resource=resource),
    ]


@server.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages while it runs.

    The scenario asks for ~50 ms between them ("the delays are important to test that
    clients can receive multiple log notifications during tool execution"): the pause is
    the tool's specified behaviour, not a wait for a condition."""
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@server.tool()
def test_error_handling() -> str:
    """Always fails (a tool error)."""
    raise ToolError("This tool intentionally returns an error for testing")


@server.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50, 100 of 100, ~50 ms apart, as the scenario specifies."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        await asyncio.sleep(0.05)
    return "Progress test completed"


@server.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model, returns its answer."""
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=_text(prompt))],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )
    content = result.content
    text = content.text if isinstance(content, types.TextContent) else str(content)
    return f"LLM response: {text}"


async def _elicit(ctx: Context, message: str, schema: dict[str, Any]) -> str:
    result = await ctx.session.elicit_form(
        message=message, requested_schema=schema, related_request_id=ctx.request_id
    )
    return f"action={result.action}, content={json.dumps(result.content)}"


@server.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email."""
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    return "User response: " + await _elicit(ctx, message, schema)


@server.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits every primitive type with a default (SEP-1034)."""
    properties = {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {
            "type": "string",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "default": True},
    }
    schema = {"type": "object", "properties": properties}
    return "Elicitation completed: " + await _elicit(ctx, "Defaults test", schema)


@server.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits the five enum shapes of SEP-1330."""
    options = ["option1", "option2", "option3"]
    properties = {
        "untitledSingle": {"type": "string", "enum": options},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": options}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    }
    schema = {"type": "object", "properties": properties}
    return "Elicitation completed: " + await _elicit(ctx, "Enums test", schema)


@server.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Writes a log line (a 2026-07-28 client without a logLevel must not receive it)."""
    await ctx.info("test_logging_tool ran")
    return "logged"


@server.tool()
async def test_streaming_elicitation(ctx: Context) -> str:
    """Asks the user a question, streaming on the call's own response."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    return "Elicitation completed: " + await _elicit(ctx, "Streaming test", schema)


@server.resource("test://static-text", mime_type="text/plain", description="Static text")
def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource("test://static-binary", mime_type="image/png", description="Static PNG")
def static_binary() -> bytes:
    return PNG


@server.resource("test://watched-resource", mime_type="text/plain", description="Subscribable")
def watched() -> str:
    return "Watched resource content."


@server.resource("test://template/{id}/data", mime_type="application/json", description="By id")
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@server.prompt(description="A prompt without arguments")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@server.prompt(description="A prompt with two arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt(description="A prompt embedding a resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    resource = types.TextResourceContents(
        uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
    )
    return [
        UserMessage(types.EmbeddedResource(type="resource", resource=resource)),
        UserMessage("Please process the embedded resource above."),
    ]


@server.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[UserMessage]:
    return [UserMessage(_image()), UserMessage("Please analyze the image above.")]


async def _complete(_ctx: object, params: types.CompleteRequestParams) -> types.CompleteResult:
    prefix = params.argument.value
    values = [v for v in ("paris", "park", "party") if v.startswith(prefix)]
    completion = types.Completion(values=values, total=len(values), has_more=False)
    return types.CompleteResult(completion=completion)


async def _set_level(_ctx: object, _params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


async def _subscribe(_ctx: object, params: types.SubscribeRequestParams) -> types.EmptyResult:
    subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(_ctx: object, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    subscriptions.discard(str(params.uri))
    return types.EmptyResult()


def _add_handlers() -> None:
    # MCPServer has no (typed) decorator for these; its low-level server takes them by method.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("completion/complete", types.CompleteRequestParams, _complete)
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe)
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    _add_handlers()
    server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
