"""The logs of finished tasks, kept after their containers are gone: one file per
container under `<state_dir>/logs/<task id>/`. Written once, when the task ends."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from orchestrator.tasks.model import LogStream

CHUNK = 64 * 1024


class LogArchive:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, task_id: str, stream: LogStream) -> Path:
        return self.directory / task_id / f"{stream.value}.log"

    def has(self, task_id: str, stream: LogStream) -> bool:
        return self.path(task_id, stream).is_file()

    async def save(self, task_id: str, stream: LogStream, chunks: AsyncIterator[bytes]) -> Path:
        """Write the whole log to a scratch file, then rename: a reader never sees half."""
        target = self.path(task_id, stream)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_suffix(".partial")
        with scratch.open("wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        scratch.replace(target)
        return target

    def read(self, task_id: str, stream: LogStream) -> Iterator[bytes]:
        with self.path(task_id, stream).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def lines(self, task_id: str, stream: LogStream) -> list[bytes]:
        if not self.has(task_id, stream):
            return []
        return self.path(task_id, stream).read_bytes().splitlines()
