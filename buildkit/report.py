"""The JSON report: what ran, what it produced, and why anything failed or was skipped.

CI reads this file; the terminal summary is rendered from the same data. Credentials
never reach it: options are serialised field by field and contain none.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from buildkit import __version__
from buildkit.errors import BuildkitError
from buildkit.gitinfo import GitInfo
from buildkit.model import Result, Status
from buildkit.options import Options

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Report:
    started: datetime
    duration: float
    exit_code: int
    git: GitInfo
    options: Options
    results: tuple[Result, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # choices made for the run, e.g. why auto took the engine

    def failed(self) -> list[Result]:
        return [result for result in self.results if result.status is Status.FAILED]

    def counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in Status}
        for result in self.results:
            counts[str(result.status)] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "buildkit": __version__,
            "started": self.started.astimezone(UTC).isoformat(timespec="seconds"),
            "duration": round(self.duration, 3),
            "exit_code": self.exit_code,
            "ok": self.exit_code == 0,
            "counts": self.counts(),
            "git": {
                "commit": self.git.commit,
                "dirty": self.git.dirty,
                "tag": self.git.tag,
                "version": self.git.version,
                "shallow": self.git.shallow,
            },
            "options": self.options.to_json(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "results": [result.to_json() for result in self.results],
        }


def write_report(report: Report, path: Path) -> None:
    """Write atomically so a reader never sees half a report."""
    text = json.dumps(report.to_json(), indent=2) + "\n"
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise BuildkitError(
            f"writing the report to {path} failed: {exc.strerror or exc}",
            hint="give --report a path in a directory you can write",
        ) from exc
