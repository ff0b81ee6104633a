"""Logging to stderr: JSON lines when stderr is not a terminal, readable text when it is.

Audit lines (logger name ``toolman.audit``) are always JSON so that log
pipelines can rely on them; they skip the logging machinery because they are
written on the hot path. Extra fields passed with ``extra=`` become JSON keys.

Inside the event loop, lines are gathered and written once per
``FLUSH_SECONDS``: one write per audit line would wake the log reader once per
tool call, which costs latency. Warnings and errors, and anything logged
outside the loop, are written at once; ``flush()`` runs before exit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, TextIO

import orjson

STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
STANDARD |= {"message", "asctime", "color_message"}
FLUSH_SECONDS = 0.05
MAX_BUFFERED = 256

_audit_log = logging.getLogger("toolman.audit")
_second: tuple[int, str] = (-1, "")


def timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the per-second part is formatted once per second."""
    global _second  # noqa: PLW0603 - a one-entry cache
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


class BatchingHandler(logging.Handler):
    """A stderr handler that writes INFO/DEBUG lines in batches."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging must never raise
            self.handleError(record)
            return
        self.add(line, urgent=record.levelno >= logging.WARNING)

    def add(self, line: str, *, urgent: bool) -> None:
        self._lines.append(line)
        if urgent or len(self._lines) >= MAX_BUFFERED:
            self.flush()
            return
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing left to tell

    def close(self) -> None:
        self.flush()
        super().close()


def flush() -> None:
    """Write out every batched line now (before the process exits)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def write_audit(fields: dict[str, Any]) -> None:
    """One audit line: always JSON, always written when INFO is enabled for toolman.audit."""
    if not _audit_log.isEnabledFor(logging.INFO):
        return
    line = {
        "ts": timestamp(time.time()),
        "level": "info",
        "logger": "toolman.audit",
        "msg": "audit",
    }
    line.update(fields)
    text = orjson.dumps(line, default=str).decode()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BatchingHandler):
            handler.add(text, urgent=False)
            return
    sys.stderr.write(text + "\n")  # logging not configured (toolman used in-process)


def configure(level: str, fmt: str = "auto") -> None:
    """Route toolman's and uvicorn's logs to stderr in one format."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # Fields toolman never logs; skipping them saves work per record.
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = BatchingHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _audit_log.setLevel(logging.INFO)  # audit lines are kept whatever the log level
