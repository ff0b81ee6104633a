"""Blocking docker SDK streams (events, followed logs) bridged into asyncio.

The SDK is synchronous: a stream is read in a daemon thread and each item handed to the
event loop. Closing the stream (`CancellableStream.close`) unblocks the thread, so a
client that disconnects from a followed log, or a shutdown, frees its thread at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import suppress
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(
    open_stream: Callable[[], Iterator[T]], *, name: str, max_buffered: int = 256
) -> AsyncGenerator[T, None]:
    """Items of a blocking iterator, read in a thread; closing this generator closes it."""
    loop = asyncio.get_running_loop()
    # Unbounded: `room` keeps at most `max_buffered` items in it, and the end (or an error)
    # must always fit behind them.
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(max_buffered)
    holder: list[Iterator[T]] = []
    closed = threading.Event()

    def put(item: object) -> None:
        queue.put_nowait(item)

    def pump() -> None:
        try:
            stream = open_stream()
            holder.append(stream)
            if closed.is_set():  # the reader left before the stream was open
                getattr(stream, "close", lambda: None)()
                return
            for item in stream:
                room.acquire()
                if closed.is_set():
                    return
                loop.call_soon_threadsafe(put, item)
        except BaseException as exc:  # handed to the reader, which raises it
            if not closed.is_set():
                with suppress(RuntimeError):  # the loop is gone: nobody is reading
                    loop.call_soon_threadsafe(put, exc)
            return
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(put, _DONE)

    thread = threading.Thread(target=pump, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item  # type: ignore[misc]
    finally:
        closed.set()
        room.release()
        for stream in holder:
            close = getattr(stream, "close", None)
            if close is not None:
                with suppress(Exception):
                    close()
