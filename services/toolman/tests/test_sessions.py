"""Session bookkeeping: idle expiry, the size limit, list_changed coalescing."""

from __future__ import annotations

import asyncio
import time

from toolman.sessions import SessionStore


def test_idle_sessions_end_and_the_oldest_makes_room() -> None:
    async def scenario() -> None:
        store = SessionStore(idle_seconds=0.2, limit=2)
        first = store.create("a", "2025-11-25")
        second = store.create("a", "2025-11-25")
        assert store.get(first.id) is first  # now the most recently used
        third = store.create("b", "2025-11-25")  # full: the least recently used (second) ends
        assert store.get(second.id) is None
        assert second.ended.is_set()
        assert {s.id for s in store} == {first.id, third.id}
        time.sleep(0.25)
        assert store.get(first.id) is None  # idle too long
        assert len(store) == 1
        store.sweep()
        assert len(store) == 0

    asyncio.run(scenario())


def test_list_changed_waits_for_a_stream_and_is_coalesced() -> None:
    async def scenario() -> None:
        session = SessionStore(idle_seconds=60, limit=10).create("a", "2025-11-25")
        session.list_changed("tools")
        session.list_changed("tools")
        session.list_changed("prompts")
        assert session.outbox.empty()
        session.open_stream()
        methods = [session.outbox.get_nowait()["method"] for _ in range(session.outbox.qsize())]
        assert methods == ["notifications/prompts/list_changed", "notifications/tools/list_changed"]
        session.list_changed("tools")
        assert session.outbox.get_nowait()["method"] == "notifications/tools/list_changed"

    asyncio.run(scenario())
