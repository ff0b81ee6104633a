"""The bridge from a blocking stream (the docker SDK's logs and events) to asyncio: every
item arrives once, in order, and the end always arrives — also when the reader is slower
than the stream (it once lost the end behind a full queue, and a log request hung)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import aclosing

import anyio
import pytest

from orchestrator.backends.threads import iterate_in_thread

pytestmark = pytest.mark.anyio


async def test_a_slow_reader_gets_every_item_and_the_end() -> None:
    """The reader takes a moment per item (a slow client of a log), so the buffer is full
    when the stream ends."""
    items = 200
    received: list[int] = []
    with anyio.fail_after(20):
        async for item in iterate_in_thread(lambda: iter(range(items)), name="t", max_buffered=8):
            received.append(item)
            await anyio.sleep(0.002)  # the slow reader this test is about
    assert received == list(range(items))


async def test_an_error_in_the_stream_reaches_the_reader_after_the_items() -> None:
    def failing() -> Iterator[int]:
        yield from range(300)
        raise ConnectionError("engine went away")

    received: list[int] = []

    async def read() -> None:
        async for item in iterate_in_thread(failing, name="t", max_buffered=4):
            received.append(item)

    with anyio.fail_after(30), pytest.raises(ConnectionError, match="went away"):
        await read()
    assert received == list(range(300))


class Endless:
    """A stream that blocks after its first item until it is closed, as a followed log
    does; `close` unblocks it like the SDK's CancellableStream."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.sent = False

    def __iter__(self) -> Endless:
        return self

    def __next__(self) -> bytes:
        if not self.sent:
            self.sent = True
            return b"first"
        self.closed.wait(60)
        raise StopIteration

    def close(self) -> None:
        self.closed.set()


async def test_leaving_early_closes_the_stream_and_frees_its_thread() -> None:
    stream = Endless()
    with anyio.fail_after(30):
        chunks = iterate_in_thread(lambda: stream, name="endless")
        async with aclosing(chunks):
            async for chunk in chunks:
                assert chunk == b"first"
                break
        await anyio.to_thread.run_sync(stream.closed.wait, 10)
    assert stream.closed.is_set()
