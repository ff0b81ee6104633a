"""Run the checks of `nox -s ci` one after another, each whatever the others did; stream
their commands' output; end with one table and one exit code (0 only if every check that
can fail passed)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from buildkit.checks.plan import Check, Outcome, plan
from buildkit.config import find_project_root, load_project
from buildkit.errors import BuildkitError
from buildkit.proc import Runner


@dataclass(frozen=True)
class Row:
    name: str
    outcome: Outcome
    seconds: float

    @property
    def status(self) -> str:
        if self.outcome.informational:
            return "info"
        return "ok" if self.outcome.ok else "FAILED"


def run_checks(checks: Sequence[Check], runner: Runner) -> tuple[Row, ...]:
    rows = []
    for check in checks:
        runner.on_output(f"── {check.name}")
        started = time.monotonic()
        try:
            outcome = check.run(runner)
        except BuildkitError as exc:  # a tool missing, say: this check fails, the rest run
            outcome = Outcome(False, exc.message)
        rows.append(Row(check.name, outcome, time.monotonic() - started))
    return tuple(rows)


def table(rows: Sequence[Row]) -> Table:
    shown = Table(title="nox -s ci", show_lines=False)
    for column in ("check", "status", "seconds", "summary"):
        shown.add_column(column, overflow="fold")
    for row in rows:
        style = "red" if row.status == "FAILED" else None
        shown.add_row(row.name, row.status, f"{row.seconds:.1f}", row.outcome.summary, style=style)
    return shown


def exit_code(rows: Sequence[Row]) -> int:
    return 0 if all(row.outcome.ok or row.outcome.informational for row in rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m buildkit.checks [PYTEST ARGS]` from the repository (nox -s ci)."""
    console = Console(stderr=False, soft_wrap=False)
    try:
        project = load_project(find_project_root(Path.cwd()))
    except BuildkitError as exc:
        console.print(f"buildkit: error: {exc}")
        return exc.exit_code
    runner = Runner(
        on_command=lambda command: print(f"$ {command}", flush=True),
        on_output=lambda line: print(line, flush=True),
    )
    rows = run_checks(plan(project, list(sys.argv[1:] if argv is None else argv)), runner)
    console.print(table(rows))
    code = exit_code(rows)
    failed = [row.name for row in rows if row.status == "FAILED"]
    console.print(f"failed: {', '.join(failed)}" if failed else "every check passed")
    return code
