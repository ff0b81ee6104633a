"""The SSE decoder on the byte boundaries real servers produce."""

from __future__ import annotations

import pytest

from mcp_wrapper.sse import Event, SSEDecoder, SSEError


def feed_all(decoder: SSEDecoder, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events


STREAM = (
    b'id: 1\r\nevent: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: keep-alive\r\n\r\ndata: x\r\n\r\n'
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    events = feed_all(SSEDecoder(), chunks)
    assert events == [Event('{"a":\n1}', "message", "1"), Event("x", "message", "1")]


def test_cr_and_lf_line_endings() -> None:
    assert feed_all(SSEDecoder(), [b"data: a\rdata: b\n\n"]) == [Event("a\nb")]


def test_priming_event_records_id_and_retry_without_dispatch() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: ev-9\nretry: 250\ndata:\n\n") == []
    assert decoder.last_event_id == "ev-9"
    assert decoder.retry_ms == 250


def test_other_event_types_are_labelled() -> None:
    assert SSEDecoder().feed(b"event: ping\ndata: 1\n\n") == [Event("1", "ping")]


def test_an_event_beyond_the_limit_is_an_error() -> None:
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"x" * 20 + b"\n")
