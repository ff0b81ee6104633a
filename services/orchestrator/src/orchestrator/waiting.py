"""One bounded wait for an event, safe to cancel.

`asyncio.wait_for(event.wait(), t)` on Python 3.11 swallows a cancellation that arrives
as the event is set (it returns the result instead), so a loop waiting so could never be
stopped; `asyncio.timeout` does not lose it.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress


async def wait_at_most(event: asyncio.Event, seconds: float) -> bool:
    """True when `event` is set within `seconds`."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
