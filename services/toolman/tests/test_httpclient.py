"""toolman's small HTTP/1.1 client against a scripted socket server on 127.0.0.1.

The server answers each request with the next canned response, so framing
(Content-Length, chunked, close-delimited), keep-alive reuse and the retry of
a connection the server had closed are all exercised byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from toolman.downstream.httpclient import ClientError, ConnectFailed, HttpClient


class Scripted:
    """A TCP server that records requests and plays back canned answers."""

    def __init__(self, answers: list[bytes], *, close_after: set[int] | None = None) -> None:
        self.answers = answers
        self.close_after = close_after or set()
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                index = len(self.requests)
                self.requests.append(head + body)
                writer.write(self.answers[index])
                await writer.drain()
                if index in self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(scripted: Scripted, scenario: Callable[[HttpClient], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpClient(f"http://127.0.0.1:{port}/mcp?x=1")
        try:
            async with asyncio.timeout(10):
                await scenario(client)
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_content_length_chunked_and_keep_alive() -> None:
    scripted = Scripted(
        [
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b'content-length: 7\r\n\r\n{"a":1}',
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
        ]
    )

    async def scenario(client: HttpClient) -> None:
        first = await client.request("POST", {"x-test": "1"}, b'{"q":1}')
        assert (first.status, await first.read()) == (200, b'{"a":1}')
        second = await client.request("POST", {}, b"{}")
        assert await second.read() == b"abcdefg"
        third = await client.request("POST", {}, b"{}")
        assert (third.status, await third.read()) == (202, b"")

    run(scripted, scenario)
    assert scripted.connections == 1  # one keep-alive connection served all three
    first = scripted.requests[0]
    assert first.startswith(b"POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"x-test: 1\r\n" in first
    assert first.endswith(b'content-length: 7\r\n\r\n{"q":1}')


def test_sse_lines_arrive_as_they_are_sent() -> None:
    stream = b"data: one\n\nevent: message\r\ndata: two\r\n\r\n"
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (stream[:7], stream[7:]))
        + b"0\r\n\r\n"
    )
    scripted = Scripted(
        [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
            b"content-type: text/event-stream\r\n\r\n" + chunked
        ]
    )

    async def scenario(client: HttpClient) -> None:
        response = await client.request("GET", {"accept": "text/event-stream"})
        assert [line async for line in response.lines()] == [
            "data: one",
            "",
            "event: message",
            "data: two",
            "",
        ]

    run(scripted, scenario)


def test_a_connection_closed_by_the_server_is_retried_once() -> None:
    scripted = Scripted(
        [
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain",
        ],
        close_after={0},  # the server drops the keep-alive connection after one answer
    )

    async def scenario(client: HttpClient) -> None:
        assert await (await client.request("POST", {}, b"1")).read() == b"ok"
        await asyncio.sleep(0.05)  # let the close reach us
        assert await (await client.request("POST", {}, b"2")).read() == b"again"

    run(scripted, scenario)
    assert scripted.connections == 2


def test_close_delimited_bodies_and_connection_close() -> None:
    scripted = Scripted(
        [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end"], close_after={0}
    )

    async def scenario(client: HttpClient) -> None:
        response = await client.request("POST", {}, b"{}")
        assert await response.read() == b"until the end"

    run(scripted, scenario)


def test_garbage_and_refused_connections_are_client_errors() -> None:
    scripted = Scripted([b"SMTP ready\r\n\r\n"])

    async def scenario(client: HttpClient) -> None:
        with pytest.raises(ClientError, match=r"not an HTTP/1\.x answer"):
            await client.request("POST", {}, b"{}")

    run(scripted, scenario)

    async def refused() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        with pytest.raises(ConnectFailed):
            await HttpClient(f"http://127.0.0.1:{port}/mcp").request("POST", {}, b"{}")

    asyncio.run(refused())
    with pytest.raises(ValueError, match="not an http"):
        HttpClient("ftp://example.invalid/x")


def test_several_pooled_connections_closed_by_the_server_are_skipped() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    scripted = Scripted([answer] * 4, close_after={0, 1, 2})

    async def scenario(client: HttpClient) -> None:
        responses = await asyncio.gather(*(client.request("POST", {}, b"{}") for _ in range(3)))
        assert [await r.read() for r in responses] == [b"ok"] * 3
        for _ in range(100):  # until the three closes have reached us (bounded)
            if all(conn.reader.at_eof() for conn in client._idle):
                break
            await asyncio.sleep(0.01)
        assert await (await client.request("POST", {}, b"{}")).read() == b"ok"

    run(scripted, scenario)
    assert scripted.connections == 4
