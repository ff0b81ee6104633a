"""Non-blocking stdin lines and stdout messages for the event loop.

Pipes and sockets (how an MCP client always runs us) go through the loop's
pipe transports, so a client that reads stdout slowly never blocks the loop.
Anything else (a terminal, a regular file, /dev/null) cannot be registered
with epoll, or would flip a shared terminal to non-blocking mode: stdin is then
read by a daemon thread and stdout is written with blocking writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import threading
from collections.abc import Callable

from mcp_wrapper import jsonrpc

MAX_LINE = 32 * 1024 * 1024


class LineTooLong(ValueError):
    """One stdin line exceeded MAX_LINE bytes; it has been discarded up to its newline."""


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class LineSource:
    """Newline-delimited lines from a StreamReader, with a bound on line length."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> bytes | None:
        """The next line without its newline, or None at end of input."""
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial or None  # a last line without a newline still counts
        except asyncio.LimitOverrunError as exc:
            await self._discard(exc.consumed)
            raise LineTooLong(f"a line is longer than {MAX_LINE} bytes") from None
        return line[:-1]

    async def _discard(self, consumed: int) -> None:
        # Drop the oversized line through its newline so the next read starts clean.
        while True:
            await self._reader.readexactly(consumed)
            try:
                await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError as exc:
                consumed = exc.consumed
                continue
            return


class Output:
    """Writes one JSON-RPC message per line to stdout; the only writer of stdout."""

    def __init__(self, writer: asyncio.StreamWriter | None, fd: int = 1) -> None:
        self._writer = writer
        self._fd = fd
        self.closed = False
        self.on_closed: Callable[[], None] | None = None

    async def write(self, message: jsonrpc.Message | list[jsonrpc.Message]) -> None:
        if self.closed:
            return
        data = jsonrpc.encode_line(message)
        try:
            if self._writer is None:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            else:
                self._writer.write(data)
                await self._writer.drain()
        except (ConnectionError, OSError):
            self._mark_closed()

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()


class _StdoutProtocol(asyncio.streams.FlowControlMixin):
    def __init__(self, output_ref: list[Output]) -> None:
        super().__init__()
        self._output_ref = output_ref

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for output in self._output_ref:
            output._mark_closed()  # the client closed its end of our stdout


async def open_stdio(stdin_fd: int = 0, stdout_fd: int = 1) -> tuple[LineSource, Output]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    if _is_pipe(stdin_fd):
        pipe = os.fdopen(stdin_fd, "rb", buffering=0, closefd=False)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    else:
        _feed_from_thread(loop, reader, stdin_fd)

    same_as_stderr = os.path.sameopenfile(stdout_fd, 2)
    if _is_pipe(stdout_fd) and not same_as_stderr:
        refs: list[Output] = []
        pipe_out = os.fdopen(stdout_fd, "wb", buffering=0, closefd=False)
        transport, protocol = await loop.connect_write_pipe(lambda: _StdoutProtocol(refs), pipe_out)
        output = Output(asyncio.StreamWriter(transport, protocol, None, loop))
        refs.append(output)
    else:
        output = Output(None, stdout_fd)
    return LineSource(reader), output


def _feed_from_thread(
    loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader, fd: int
) -> None:
    def pump() -> None:
        try:
            while data := os.read(fd, 65536):
                loop.call_soon_threadsafe(reader.feed_data, data)
        except OSError:
            pass
        finally:
            # The loop may already be closed when the wrapper exits before stdin ends.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(reader.feed_eof)

    threading.Thread(target=pump, name="stdin", daemon=True).start()
