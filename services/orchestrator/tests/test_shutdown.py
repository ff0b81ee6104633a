"""Shutting down right after a submission: `Controller.stop()` must return.

A reproduction for the controller (not the API): a task submitted (`wake()`) in the same
turn of the event loop as the shutdown (`stop()`) — SIGTERM just after a POST. The
controller is real: real store, real Docker backend pointed at no engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import make_config

from orchestrator.app import docker_backend
from orchestrator.controller.scheduler import Controller
from orchestrator.metrics import Metrics
from orchestrator.tasks.logs import LogArchive
from orchestrator.tasks.store import TaskStore

pytestmark = pytest.mark.anyio


async def test_the_controller_stops_right_after_a_wake_up(tmp_path: Path) -> None:
    config = make_config(tmp_path / "state")
    store = TaskStore(tmp_path / "state" / "tasks.db", lambda: 0.0)
    async with httpx.AsyncClient() as http:
        backend = docker_backend(config, http, {})
        controller = Controller(
            store=store,
            backend=backend,
            config=config,
            archive=LogArchive(tmp_path / "state" / "logs"),
            metrics=Metrics(store.counts),
            environ={},
            clock=lambda: 0.0,
        )
        await controller.start()
        await anyio.sleep(0.05)  # let it settle into its wait for a wake-up
        controller.wake()
        stopping = asyncio.ensure_future(controller.stop())
        done, _ = await asyncio.wait({stopping}, timeout=3)  # milliseconds when it works
        if not done:  # a second cancel gets through; do not leave the loop running
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping
        await backend.close()
    store.close()
    assert done, "Controller.stop() did not return within 3 s of a wake-up"
