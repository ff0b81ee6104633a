"""What people see: the task table, one task's details, the outcome line, and the status
line shown on stderr while a task is followed.

The status line is rich's `Live` on stderr when stderr is a terminal, else a plain line
per phase change. The agent's log goes to stdout untouched (bytes as they come) unless
stdout is the same terminal as the live line: then whole lines are printed through the
live console, above the status line, which is what rich's own stdout redirection does.
"""

from __future__ import annotations

import codecs
import os
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from orchestrator.client.task import Task

PHASE_STYLES = {
    "pending": "yellow",
    "starting": "cyan",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "timed_out": "red",
}
REASON_WIDTH = 48


def span(seconds: float) -> str:
    """`42s`, `3m05s`, `2h07m`, `3d04h`."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def duration(task: Task, now: datetime) -> str:
    if task.started_at is None:
        return "-"
    end = task.finished_at or now
    return span((end - task.started_at).total_seconds())


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def shorten(text: str | None, width: int = REASON_WIDTH) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def task_table(tasks: Iterable[Task], now: datetime | None = None) -> Table:
    now = now or datetime.now(UTC)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("PHASE", no_wrap=True)
    table.add_column("AGENT", no_wrap=True)
    table.add_column("AGE", justify="right", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("EXIT", justify="right", no_wrap=True)
    table.add_column("TOOLS A/R", justify="right", no_wrap=True)
    table.add_column("REASON", overflow="ellipsis", no_wrap=True, max_width=REASON_WIDTH)
    for task in tasks:
        table.add_row(
            task.id,
            phase_text(task.phase),
            task.agent,
            span((now - task.created_at).total_seconds()),
            duration(task, now),
            "" if task.exit_code is None else str(task.exit_code),
            f"{task.tool_calls.allowed}/{task.tool_calls.refused}",
            shorten(task.reason),
        )
    return table


def details(task: Task, now: datetime | None = None) -> Table:
    """`orchestrator task get`: one task, a field a line."""
    now = now or datetime.now(UTC)
    spec = task.spec
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()

    def row(name: str, value: object) -> None:
        if value not in (None, "", [], {}):
            table.add_row(name, value if isinstance(value, Text) else Text(str(value)))

    row("id", task.id)
    row("phase", phase_text(task.phase))
    row("reason", task.reason)
    row("exit code", task.exit_code)
    row("agent", task.agent + (f" (model {spec['agent']['model']})" if _model(spec) else ""))
    row("created", f"{task.created_at:%Y-%m-%d %H:%M:%S} UTC")
    row("started", task.started_at and f"{task.started_at:%Y-%m-%d %H:%M:%S} UTC")
    row("finished", task.finished_at and f"{task.finished_at:%Y-%m-%d %H:%M:%S} UTC")
    row("duration", duration(task, now) if task.started_at else None)
    repo = spec.get("repository") or {}
    if repo:
        ref = repo.get("branch") or repo.get("commit")
        row("repository", repo.get("url", "") + (f" @ {ref}" if ref else ""))
    for file in spec.get("files") or []:
        mode = ", executable" if file.get("executable") else ""
        row("file", f"{file.get('path')} ({file.get('bytes')} bytes{mode})")
    tools = spec.get("tools") or {}
    row("tool servers", ", ".join(tools.get("servers") or []))
    calls = task.tool_calls
    row("tool calls", f"{calls.allowed} allowed, {calls.refused} refused, {calls.failed} failed")
    for tool, counts in sorted(calls.by_tool.items()):
        row("", f"{tool}: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    row("env", ", ".join(sorted(spec.get("env") or {})))
    row("secrets", ", ".join(sorted(spec.get("secrets") or {})))
    row("timeout", spec.get("timeout_seconds") and f"{spec['timeout_seconds']} s")
    labels = spec.get("labels") or {}
    row("labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    return table


def _model(spec: object) -> bool:
    return isinstance(spec, dict) and bool((spec.get("agent") or {}).get("model"))


def outcome(task: Task) -> str:
    """`task 1f2e… succeeded: exit code 0, tool calls 3 allowed / 1 refused`."""
    calls = task.tool_calls
    facts = [] if task.exit_code is None else [f"exit code {task.exit_code}"]
    facts.append(f"tool calls {calls.allowed} allowed / {calls.refused} refused")
    if task.reason:
        facts.append(task.reason)
    return f"task {task.id} {task.phase}: " + ", ".join(facts)


# -- following ---------------------------------------------------------------------------


class PlainStatus:
    """A line on stderr each time the phase changes (stderr is not a terminal)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.phase = ""
        self.lock = threading.Lock()

    def show(self, task: Task) -> None:
        with self.lock:
            if task.phase != self.phase:
                self.phase = task.phase
                print(f"task {task.id}: {task.phase}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(f"task: {text}", file=self.stream, flush=True)

    def __enter__(self) -> PlainStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveStatus:
    """A spinner line on a terminal: the task's phase, how long it has run, its tool
    calls; rendered at each refresh, so the time ticks between updates."""

    def __init__(self, console: Console, task: Task) -> None:
        self.task = task
        self.message = ""
        self.spinner = Spinner("dots")
        self.live = Live(
            self, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
        )

    def __rich__(self) -> Group:
        task = self.task
        now = datetime.now(UTC)
        since = task.started_at or task.created_at
        until = task.finished_at or now
        line = Text.assemble(
            f"task {task.id[:8]} ",
            phase_text(task.phase),
            f" {span((until - since).total_seconds())}",
            f" · tool calls {task.tool_calls.allowed} allowed / {task.tool_calls.refused} refused",
            (f" · {self.message}" if self.message else "", "dim"),
        )
        self.spinner.text = line
        return Group(self.spinner)

    def show(self, task: Task) -> None:
        self.task = task
        self.message = ""

    def note(self, text: str) -> None:
        self.message = text

    def __enter__(self) -> LiveStatus:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


class RawSink:
    """The log's bytes, as they come, to a binary stream (stdout not on the terminal)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def write(self, chunk: bytes) -> None:
        self.stream.write(chunk)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class ConsoleSink:
    """Whole lines through the live console, so they scroll above the status line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def write(self, chunk: bytes) -> None:
        text = self.pending + self.decoder.decode(chunk)
        *lines, self.pending = text.split("\n")
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)

    def flush(self) -> None:
        pass  # a partial line waits for its end, or for `close`

    def close(self) -> None:
        rest = self.pending + self.decoder.decode(b"", final=True)
        self.pending = ""
        if rest:
            self.console.print(Text(rest), soft_wrap=True)


def same_terminal(first: IO[str], second: IO[str]) -> bool:
    try:
        return (
            first.isatty()
            and second.isatty()
            and (os.ttyname(first.fileno()) == os.ttyname(second.fileno()))
        )
    except (OSError, ValueError):
        return False


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def stdout_console() -> Console:
    """A terminal's width on a terminal; wide enough for whole rows in a pipe."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=200)
