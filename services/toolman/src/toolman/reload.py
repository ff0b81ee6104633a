"""Config reloads on SIGHUP or when the file changes, without dropping sessions.

The new file is validated completely before anything is touched; a bad one
is refused with a logged error naming the key, and the old config keeps
serving. File changes are noticed by polling (mtime, size, inode) every
``reload.watch_interval_seconds``, which also catches Kubernetes ConfigMap
symlink swaps that inotify-style watchers miss. The token files named by
``auth.tokens`` are polled the same way, so a rotated Secret volume applies
its new token without a SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from toolman import config as config_file
from toolman.config import Config
from toolman.errors import ConfigError
from toolman.gateway import Gateway

log = logging.getLogger("toolman.reload")


Fingerprint = tuple[float, int, int] | None


def _fingerprint(path: Path) -> Fingerprint:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime, stat.st_size, stat.st_ino)


def _state(path: Path, config: Config) -> tuple[Fingerprint, ...]:
    """The config file's fingerprint and those of the token files it names."""
    return (_fingerprint(path), *(_fingerprint(file) for file in config.token_files))


class ConfigWatcher:
    def __init__(self, path: Path, gateway: Gateway) -> None:
        self.path = path
        self.gateway = gateway
        self.reloads = 0  # applied
        self.refusals = 0  # refused as invalid
        self._seen = _state(path, gateway.config)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(
            NotImplementedError, RuntimeError
        ):  # not the main thread: no signals
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._task = asyncio.create_task(self._watch(), name="config-watch")

    async def stop(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in (self._task, *self._pending):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._task, *self._pending) if t), return_exceptions=True
        )

    def _on_sighup(self) -> None:
        log.info("SIGHUP: reloading config", extra={"path": str(self.path)})
        task = asyncio.create_task(self.reload())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch(self) -> None:
        while True:
            interval = self.gateway.config.watch_interval_seconds
            await asyncio.sleep(interval if interval > 0 else 5.0)
            if interval > 0 and _state(self.path, self.gateway.config) != self._seen:
                await self.reload()

    async def reload(self) -> bool:
        """Load, validate and apply the file; False (and the old config kept) when it is bad."""
        async with self._lock:
            old = self.gateway.config
            self._seen = _state(self.path, old)
            try:
                new = config_file.load(self.path, os.environ)
            except ConfigError as exc:
                self.refusals += 1
                log.error("config reload refused; the previous config keeps serving: %s", exc)
                return False
            await self.gateway.apply(new)
            if new.token_files != old.token_files:  # watch the files the new config names
                self._seen = (self._seen[0], *(_fingerprint(f) for f in new.token_files))
            self.reloads += 1
            return True
