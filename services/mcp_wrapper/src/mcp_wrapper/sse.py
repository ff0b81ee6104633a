"""Incremental Server-Sent Events decoder (the WHATWG event-stream format).

Bytes arrive in arbitrary chunks; ``feed`` returns the events completed so far.
Events with empty data are not dispatched (the spec says so), but their ``id``
is still recorded: MCP servers send such "priming" events so a client can
resume with ``Last-Event-ID`` after the server closes the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")
DEFAULT_MAX_EVENT = 32 * 1024 * 1024


class SSEError(ValueError):
    """The stream exceeded the size limit for one event."""


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT) -> None:
        self._max = max_event_size
        self._buffer = bytearray()
        self._data: list[str] = []
        self._size = 0
        self._event = ""
        # Persist across events, as in a browser's EventSource.
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        events: list[Event] = []
        position = 0
        while match := _LINE_END.search(self._buffer, position):
            # A CR at the very end may be the first half of a CRLF split across chunks.
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break
            self._line(bytes(self._buffer[position : match.start()]), events)
            position = match.end()
        del self._buffer[:position]
        if len(self._buffer) + self._size > self._max:
            raise SSEError(f"an event is larger than {self._max} bytes")
        return events

    def _line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(b":"):
            return  # comment, e.g. a keep-alive ping
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", errors="replace")
        if name == b"data":
            self._data.append(text)
            self._size += len(value) + 1
        elif name == b"event":
            self._event = text
        elif name == b"id":
            if "\0" not in text:
                self.last_event_id = text
        elif name == b"retry" and value.isdigit():
            self.retry_ms = int(value)

    def _dispatch(self, events: list[Event]) -> None:
        data = "\n".join(self._data)
        if data:  # an event whose data is empty is not dispatched (WHATWG)
            events.append(Event(data, self._event or "message", self.last_event_id))
        self._data = []
        self._size = 0
        self._event = ""
