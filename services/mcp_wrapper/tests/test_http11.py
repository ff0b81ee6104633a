"""The HTTP/1.1 client against a raw asyncio server that writes exact bytes.

Why a raw server: these cases (a keep-alive connection closed under the client,
trailers after a chunked body, an interim 100, a body that ends at close) are
about the bytes on the wire, which no well-behaved framework produces on cue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mcp_wrapper import http11
from mcp_wrapper.endpoint import Endpoint
from mcp_wrapper.errors import ConnectionLost, UnreachableError, UpstreamProtocolError
from mcp_wrapper.http11 import HttpClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def serve(handler: Handler, scenario: Callable[[HttpClient], Awaitable[Any]]) -> Any:
    """Run ``scenario`` against a loopback server calling ``handler`` per connection.

    Returns the scenario's result and how many connections the server accepted.
    """

    async def main() -> Any:
        count = 0

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal count
            count += 1
            try:
                await handler(reader, writer, count)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpClient(Endpoint.parse(f"http://127.0.0.1:{port}/mcp"))
        try:
            async with asyncio.timeout(10):
                return await scenario(client), count
        finally:
            await client.aclose()
            server.close()

    return asyncio.run(main())


def test_keep_alive_reuses_one_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(OK)

    async def scenario(client: HttpClient) -> list[bytes]:
        bodies = []
        for _n in range(5):
            async with await client.request("POST", {}, b"{}") as response:
                bodies.append(await response.read())
        return bodies

    bodies, connections = serve(handler, scenario)
    assert bodies == [b"ok"] * 5
    assert connections == 1


def test_request_line_and_headers_on_the_wire() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)

    async def scenario(client: HttpClient) -> None:
        async with await client.request("POST", {"Accept": "a/b"}, b'{"x":1}') as response:
            await response.read()

    serve(handler, scenario)
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /mcp HTTP/1.1"
    assert b"Accept: a/b" in lines
    assert b"Content-Length: 7" in lines
    assert any(line.startswith(b"Host: 127.0.0.1:") for line in lines)
    assert body == b'{"x":1}'


def closes_second_request(answered: list[int]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(OK)
        if n == 1:
            await read_request(reader)  # the keep-alive connection dies under the next request
            return
        answered.append(n)

    return handler


def test_a_dead_keep_alive_connection_is_retried_once_on_a_new_one() -> None:
    answered: list[int] = []

    async def scenario(client: HttpClient) -> bytes:
        async with await client.request("POST", {}, b"1") as response:
            await response.read()
        async with await client.request("POST", {}, b"2") as response:
            return await response.read()

    body, connections = serve(closes_second_request(answered), scenario)
    assert body == b"ok"
    assert connections == 2


def test_no_retry_when_the_request_must_not_be_sent_twice() -> None:
    async def scenario(client: HttpClient) -> str:
        async with await client.request("POST", {}, b"1") as response:
            await response.read()
        with pytest.raises(ConnectionLost) as caught:
            await client.request("POST", {}, b"tools/call", retry_stale=False)
        return str(caught.value)

    message, connections = serve(closes_second_request([]), scenario)
    assert "before answering" in message
    assert connections == 1


def test_chunked_body_with_extensions_and_trailers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n"
                b"A\r\n0123456789\r\n"
                b"0\r\nX-Trailer: t\r\n\r\n"
            )

    async def scenario(client: HttpClient) -> list[bytes]:
        chunks = []
        for _n in range(2):
            async with await client.request("GET", {}) as response:
                assert response.status == 200
                chunks += [chunk async for chunk in response.iter_bytes()]
        return chunks

    chunks, connections = serve(handler, scenario)
    assert chunks == [b"abc", b"0123456789"] * 2
    assert connections == 1  # the trailers were consumed, so the connection stayed usable


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\n\r\nread until close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["no-length", "connection-close", "http-1.0"],
)
def test_connections_that_cannot_be_reused_are_not(answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async def scenario(client: HttpClient) -> list[bytes]:
        bodies = []
        for _n in range(2):
            async with await client.request("POST", {}, b"{}") as response:
                bodies.append(await response.read())
        return bodies

    bodies, connections = serve(handler, scenario)
    assert bodies[0] == bodies[1] == answer.partition(b"\r\n\r\n")[2]
    assert connections == 2


def test_idle_connections_expire_before_the_server_drops_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http11, "KEEPALIVE_IDLE", 0.0)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(OK)

    async def scenario(client: HttpClient) -> None:
        for _n in range(2):
            async with await client.request("POST", {}, b"{}") as response:
                await response.read()

    _, connections = serve(handler, scenario)
    assert connections == 2


def test_garbage_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    async def scenario(client: HttpClient) -> None:
        with pytest.raises(UpstreamProtocolError):
            await client.request("POST", {}, b"{}")

    serve(handler, scenario)


def test_connection_refused_is_unreachable() -> None:
    async def scenario() -> None:
        client = HttpClient(Endpoint.parse("http://127.0.0.1:9/mcp"))
        with pytest.raises(UnreachableError, match=r"cannot connect to toolman at http://127\.0"):
            await client.request("POST", {}, b"{}")

    asyncio.run(scenario())


def test_header_values_with_line_breaks_are_refused() -> None:
    client = HttpClient(Endpoint.parse("http://127.0.0.1:9/mcp"))
    with pytest.raises(ValueError, match="line break"):
        asyncio.run(client.request("POST", {"X": "a\r\nEvil: 1"}, b""))
