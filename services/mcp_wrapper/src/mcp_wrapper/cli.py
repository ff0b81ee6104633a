"""Command line: the only place that prints, configures logging and exits.

stdout belongs to the MCP client: nothing but JSON-RPC lines is ever written
there. Everything for humans goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

from mcp_wrapper.errors import ConfigError, UpstreamError
from mcp_wrapper.settings import DEFAULT_URL, Settings

log = logging.getLogger("mcp_wrapper")

EPILOG = f"""\
environment:
  MCP_TOOLMAN_SERVER_URL  toolman's MCP endpoint (default {DEFAULT_URL})
  MCP_WRAPPER_TIMEOUT     seconds each request may take (default 30)
  MCP_WRAPPER_DEBUG       1/true: log each message's method, id, status and latency
  MCP_TOOLMAN_TOKEN       bearer token for toolman (never logged)

exit status: 0 after stdin closes or SIGTERM, 1 when --check fails,
2 on invalid configuration.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-wrapper",
        description=(
            "Forward MCP JSON-RPC between stdio (newline-delimited) and toolman's "
            "Streamable HTTP endpoint."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="send initialize to toolman, print one line and exit 0 (ok) or 1 (for health checks)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        from mcp_wrapper import __version__

        print(f"mcp-wrapper {__version__}")
        return 0
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"mcp-wrapper: {exc}", file=sys.stderr)
        return 2
    # --check speaks one line; its session's info logs would make it two.
    _configure_logging(settings.debug, quiet=args.check)
    if args.check:
        return _check(settings)
    try:
        asyncio.run(_serve(settings))
    except Exception:  # a bug: say so on stderr, never on stdout
        log.exception("mcp-wrapper stopped on an unexpected error")
        return 1
    return 0


def _check(settings: Settings) -> int:
    from mcp_wrapper.check import check

    try:
        line = asyncio.run(check(settings))
    except UpstreamError as exc:
        print(f"mcp-wrapper: check failed: {exc}", file=sys.stderr)
        return 1
    print(f"mcp-wrapper: {line}", file=sys.stderr)
    return 0


async def _serve(settings: Settings) -> None:
    from mcp_wrapper.forwarder import Forwarder
    from mcp_wrapper.stdio import open_stdio
    from mcp_wrapper.upstream import Upstream

    source, output = await open_stdio()
    upstream = Upstream(settings, output.write)
    forwarder = Forwarder(settings, upstream, output)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, forwarder.stop)
    log.info("forwarding stdio to %s (timeout %g s)", settings.url, settings.timeout)
    await forwarder.run(source)
    log.debug("stopped")


class _JsonFormatter(logging.Formatter):
    """The same keys as toolman's logs, so one pipeline reads both."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _configure_logging(debug: bool, *, quiet: bool = False) -> None:
    # JSON lines when stderr is captured (an agent's log), readable text on a terminal.
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        text = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(text, "%H:%M:%S"))
    else:
        handler.setFormatter(_JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    log.propagate = False
