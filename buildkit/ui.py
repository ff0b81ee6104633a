"""Terminal output, and the only module that imports rich.

Three modes, chosen from the environment:
    live    stdout is a TTY: a live grid of target x stage, then a summary table
    plain   not a TTY: one line per finished step (CI logs, pipes)
    github  GITHUB_ACTIONS=true: plain, each step's output in a log group, errors as
            annotations, and a Markdown summary appended to $GITHUB_STEP_SUMMARY
Output of a step is buffered and shown whole (never interleaved); --debug streams it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from buildkit.model import Result, Status, Step
from buildkit.report import Report

STYLE = {
    Status.OK: ("✓", "green"),
    Status.FAILED: ("✗", "bold red"),
    Status.SKIPPED: ("-", "dim"),
    Status.CACHED: ("◆", "cyan"),
}


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class TerminalUI:
    def __init__(
        self,
        *,
        debug: bool = False,
        stream: TextIO | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        stream = stream or sys.stdout
        self.github = env.get("GITHUB_ACTIONS", "").lower() == "true"
        self.summary_path = (
            Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None
        )
        self.live_mode = stream.isatty() and not self.github and env.get("TERM") != "dumb"
        # Logs are read in wide viewers: do not fold the summary at 80 columns.
        width = None if self.live_mode else int(env.get("COLUMNS", "160"))
        self.console = Console(
            file=stream,
            width=width,
            force_terminal=self.live_mode or None,
            no_color=not self.live_mode,
            highlight=False,
            soft_wrap=True,
        )
        self.errors = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.debug = debug
        self._lock = threading.Lock()
        self._steps: list[Step] = []
        self._results: dict[str, Result] = {}
        self._running: dict[str, float] = {}
        self._buffers: dict[str, list[str]] = {}
        self._live: Live | None = None

    # -- Events ---------------------------------------------------------------------
    def planned(self, steps: Sequence[Step]) -> None:
        self._steps = list(steps)
        if self.live_mode and steps:
            self._live = Live(
                get_renderable=self._grid,
                console=self.console,
                refresh_per_second=8,
                transient=True,
            )
            self._live.start()

    def started(self, step: Step) -> None:
        with self._lock:
            self._running[step.id] = time.monotonic()
            self._buffers[step.id] = []
        if not self.live_mode and not self.github:
            self._say(f"[{step.id}] started")

    def command(self, step: Step, command: str) -> None:
        self.output(step, f"$ {command}")

    def output(self, step: Step, line: str) -> None:
        with self._lock:
            self._buffers.setdefault(step.id, []).append(line)
        if self.debug:
            self._say(f"[{step.id}] {line}")

    def finished(self, step: Step, result: Result) -> None:
        with self._lock:
            self._running.pop(step.id, None)
            self._results[step.id] = result
            lines = self._buffers.pop(step.id, [])
        if self.live_mode:
            return
        if self.github and lines:
            self._say(f"::group::{step.id} ({result.status}, {result.duration:.1f}s)")
            for line in lines:
                self._say(line)
            self._say("::endgroup::")
        self._say(status_line(result))
        if result.status is Status.FAILED:
            if self.github:
                self._say(f"::error title=buildkit {step.id} failed::{one_line(result.reason)}")
            self._say_failure(result)

    # -- Messages ---------------------------------------------------------------------
    def warning(self, message: str) -> None:
        if self.github:
            self._say(f"::warning title=buildkit::{one_line(message)}")
        self.errors.print(Text(f"buildkit: warning: {message}", style="yellow"))

    def error(self, message: str) -> None:
        self.stop()
        if self.github:
            self._say(f"::error title=buildkit::{one_line(message)}")
        self.errors.print(Text(f"buildkit: error: {message}", style="bold red"))

    def info(self, message: str) -> None:
        self._say(message)

    # -- End of run ---------------------------------------------------------------------
    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self, report: Report, report_path: Path) -> None:
        self.stop()
        self.console.print(summary_table(report.results))
        if self.live_mode:
            for result in report.failed():
                self._say_failure(result)
        counts = ", ".join(f"{n} {status}" for status, n in report.counts().items() if n)
        verdict = "FAILED" if report.exit_code else "OK"
        style = "bold red" if report.exit_code else "bold green"
        self.console.print(
            Text.assemble(
                (verdict, style),
                f"  {counts} in {report.duration:.1f}s  "
                f"version {report.git.version}  report {report_path}",
            )
        )
        if report.failed():
            names = ", ".join(f"{r.target} ({r.stage})" for r in report.failed())
            self.console.print(Text(f"failed: {names}", style="bold red"))
        if self.summary_path is not None:
            with self.summary_path.open("a", encoding="utf-8") as handle:
                handle.write(markdown_summary(report))

    # -- helpers ---------------------------------------------------------------------
    def _say(self, line: str) -> None:
        with self._lock:
            self.console.print(Text(line), highlight=False)

    def _say_failure(self, result: Result) -> None:
        self.console.print(Text(f"── {result.id} failed: {result.reason}", style="bold red"))
        if result.command:
            self.console.print(Text(f"   command: {result.command}"))
        if result.output_tail:
            self.console.print(
                Text(indent(result.output_tail), style="dim" if self.live_mode else "")
            )

    def _grid(self) -> RenderableType:
        with self._lock:
            targets = list(dict.fromkeys(step.target for step in self._steps))
            stages = list(dict.fromkeys(step.stage for step in self._steps))
            table = Table(box=None, pad_edge=False, header_style="bold")
            table.add_column("")
            for stage in stages:
                table.add_column(stage)
            for target in targets:
                cells: list[RenderableType] = [Text(target, style="bold")]
                for stage in stages:
                    cells.append(self._cell(f"{target}:{stage}"))
                table.add_row(*cells)
            return Group(table)

    def _cell(self, step_id: str) -> RenderableType:
        if step_id in self._results:
            result = self._results[step_id]
            mark, style = STYLE[result.status]
            timing = f" {result.duration:.1f}s" if result.duration >= 0.05 else ""
            return Text(f"{mark}{timing}", style=style)
        if step_id in self._running:
            elapsed = time.monotonic() - self._running[step_id]
            return Spinner("dots", text=Text(f"{elapsed:.0f}s", style="yellow"))
        if any(step.id == step_id for step in self._steps):
            return Text("·", style="dim")
        return Text("")


def status_line(result: Result) -> str:
    mark, _ = STYLE[result.status]
    detail = result.summary or result.reason
    return f"[{result.id}] {mark} {result.status} {result.duration:.1f}s" + (
        f"  {detail}" if detail else ""
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def indent(text: str) -> str:
    return "\n".join(f"   │ {line}" for line in text.splitlines())


def primary_artifact(result: Result) -> tuple[str, str]:
    for artifact in result.artifacts:
        if artifact.kind in ("wheel", "image"):
            return artifact.name, human_size(artifact.size)
        if artifact.kind == "push" and artifact.details.get("digest"):
            return f"{artifact.name}@{str(artifact.details['digest'])[:19]}…", ""
    return "", ""


def summary_table(results: Sequence[Result]) -> Table:
    table = Table(title="buildkit summary", title_justify="left", header_style="bold")
    for column in ("service", "stage", "status", "time", "artifact", "size", "notes"):
        table.add_column(column, overflow="fold")
    for result in results:
        mark, style = STYLE[result.status]
        artifact, size = primary_artifact(result)
        table.add_row(
            result.target,
            result.stage,
            Text(f"{mark} {result.status}", style=style),
            f"{result.duration:.1f}s",
            escape(artifact),
            size,
            escape(result.summary if result.status is Status.OK else result.reason),
        )
    return table


def markdown_summary(report: Report) -> str:
    lines = [
        f"### buildkit {'failed' if report.exit_code else 'succeeded'} "
        f"(version `{report.git.version}`)",
        "",
        "| service | stage | status | time | artifact | size | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in report.results:
        artifact, size = primary_artifact(result)
        notes = result.summary if result.status is Status.OK else result.reason
        lines.append(
            f"| {result.target} | {result.stage} | {result.status} | {result.duration:.1f}s "
            f"| {artifact} | {size} | {one_line(notes).replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n\n"
