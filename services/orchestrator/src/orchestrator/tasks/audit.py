"""What a task's logs tell of it: its tool calls, counted from its toolman's audit lines,
and the agent's last words, which a failure's reason quotes (on either backend).

toolman writes one JSON line per call to stderr (logger `toolman.audit`: agent, kind,
name, decision, outcome); anything else in the log is skipped. A refused call has a
decision other than `allowed`; an allowed call that ended in an error counts as failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from orchestrator.tasks.model import ToolCalls

AUDIT_LOGGER = "toolman.audit"


class ToolCallCounter:
    """Counts audit lines as they arrive (a followed log) or all at once."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.allowed = 0
        self.refused = 0
        self.failed = 0
        self.by_tool: dict[str, dict[str, int]] = {}
        self._partial = b""

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk of log output; True when it held an audit line of a tool call."""
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        counted = False
        for line in lines:
            counted = self.line(line) or counted
        return counted

    def line(self, raw: bytes | str) -> bool:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if AUDIT_LOGGER not in text:
            return False
        try:
            entry = json.loads(text[text.index("{") :])
        except (ValueError, json.JSONDecodeError):
            return False
        if not isinstance(entry, dict) or entry.get("logger") != AUDIT_LOGGER:
            return False
        if entry.get("kind") != "tool" or entry.get("agent") != self.agent:
            return False
        name = str(entry.get("name", "?"))
        counts = self.by_tool.setdefault(name, {"allowed": 0, "refused": 0, "failed": 0})
        if entry.get("decision") != "allowed":
            self.refused += 1
            counts["refused"] += 1
        else:
            self.allowed += 1
            counts["allowed"] += 1
            if entry.get("outcome") not in ("ok", None):
                self.failed += 1
                counts["failed"] += 1
        return True

    def summary(self) -> ToolCalls:
        return ToolCalls(
            allowed=self.allowed,
            refused=self.refused,
            failed=self.failed,
            by_tool={name: dict(counts) for name, counts in sorted(self.by_tool.items())},
        )


def count_tool_calls(agent: str, lines: Iterable[bytes | str]) -> ToolCalls:
    counter = ToolCallCounter(agent)
    for line in lines:
        counter.line(line)
    return counter.summary()


def last_words(lines: Iterable[bytes | str]) -> str:
    """`; its last output: '...'` from the agent's last non-empty line; "" if none."""
    for line in reversed(list(lines)):
        raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = raw.strip()
        if text:
            return f"; its last output: {text[:300]!r}"
    return ""
