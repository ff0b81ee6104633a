"""The record of steps that succeeded, by the hash of their inputs (build/cache/).

One small JSON file per step: its key and its result. A step whose current key matches
is not run again (if its artifacts still exist). Delete build/cache/ at any time; the
next run simply does the work.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from buildkit.model import Result, Step


class StepCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, step: Step) -> Path:
        return self.directory / f"{step.target}--{step.stage}.json"

    def load(self, step: Step, key: str) -> Result | None:
        try:
            record = json.loads(self.path(step).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        try:
            return Result.from_json(record["result"])
        except (KeyError, TypeError, ValueError):
            return None  # written by another version of buildkit: do the work again

    def store(self, step: Step, key: str, result: Result) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {
            "key": key,
            "stored": datetime.now(UTC).isoformat(timespec="seconds"),
            "result": result.to_json(),
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".step-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
        os.replace(tmp, self.path(step))
