"""Logging to stderr: JSON lines when stderr is not a terminal, readable text when it is.

Audit records (logger ``toolman.audit``) are always JSON so that log pipelines
can rely on them. Extra fields passed with ``extra=`` become JSON keys.

Inside the event loop, lines are gathered and written once per loop turn (at
most ``FLUSH_SECONDS`` later): one write per audit line would wake the log
reader once per tool call, which costs latency on the hot path. Warnings and
errors, and anything logged outside the loop, are written at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, TextIO

import orjson

STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        audit = fields.pop("audit", None)
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if isinstance(audit, dict):
            line.update(audit)
        line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self._json = JsonFormatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "toolman.audit":
            return self._json.format(record)
        text = super().format(record)
        fields = _fields(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


FLUSH_SECONDS = 0.05
MAX_BUFFERED = 256


class BatchingHandler(logging.Handler):
    """A stderr handler that batches INFO/DEBUG lines per event-loop turn."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        if record.levelno >= logging.WARNING or len(self._lines) >= MAX_BUFFERED:
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


def configure(level: str, fmt: str = "auto") -> None:
    """Route toolman's and uvicorn's logs to stderr in one format."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # Fields toolman never logs; skipping them saves a syscall per record.
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
    logging.getLogger("toolman.audit").setLevel(logging.INFO)
