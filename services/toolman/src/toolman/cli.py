"""Command line: the only place that prints errors and exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from toolman import __version__
from toolman.settings import Settings, SettingsError, parse_log_level, parse_port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolman",
        description="Serve the toolman API (GET /health).",
        epilog="Environment: TOOLMAN_HOST, TOOLMAN_PORT, TOOLMAN_LOG_LEVEL; options override them.",
    )
    parser.add_argument("--version", action="version", version=f"toolman {__version__}")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", help="port to listen on (default 3000)")
    parser.add_argument("--log-level", help="critical|error|warning|info|debug (default info)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        base = Settings.from_env()
        settings = Settings(
            host=args.host or base.host,
            port=parse_port("--port", args.port, base.port),
            log_level=parse_log_level(args.log_level) if args.log_level else base.log_level,
        )
    except SettingsError as exc:
        print(f"toolman: error: {exc}", file=sys.stderr)
        return 2

    import uvicorn  # imported late: --version and --help stay fast

    from toolman.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0
