"""Command line: the only place that prints errors and exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from toolman import __version__
from toolman.config import Config
from toolman.errors import ConfigError
from toolman.settings import Settings, parse_log_level, parse_port

log = logging.getLogger("toolman")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolman",
        description="MCP gateway: serves /mcp (Streamable HTTP), /health, /ready and /metrics.",
        epilog="Environment: TOOLMAN_HOST, TOOLMAN_PORT, TOOLMAN_LOG_LEVEL, TOOLMAN_LOG_FORMAT, "
        "TOOLMAN_CONFIG_PATH, AGENT_NAME; options override them.",
    )
    parser.add_argument("--version", action="version", version=f"toolman {__version__}")
    parser.add_argument("--config", help="config file (default /etc/toolman/toolman.json)")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", help="port to listen on (default 3000)")
    parser.add_argument("--log-level", help="critical|error|warning|info|debug (default info)")
    parser.add_argument(
        "--check-config", action="store_true", help="validate the config file and exit"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    return replace(
        base,
        host=args.host or base.host,
        port=parse_port("--port", args.port, base.port),
        log_level=parse_log_level(args.log_level) if args.log_level else base.log_level,
        config_path=Path(args.config) if args.config else base.config_path,
        config_explicit=bool(args.config) or base.config_explicit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from toolman import config as config_file

    try:
        settings = _settings(args)
        path: Path | None = settings.config_path
        if settings.config_explicit or settings.config_path.exists():
            config = config_file.load(settings.config_path)
        else:
            path, config = None, Config()
    except ConfigError as exc:
        print(f"toolman: error: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        source = settings.config_path if path else "built-in defaults"
        servers, agents = len(config.servers), len(config.rules.agents)
        print(f"toolman: {source}: OK ({servers} servers, {agents} agent policies)")
        return 0
    return _serve(settings, config, path)


def _fast_stack() -> dict[str, str]:
    """uvloop and httptools when installed (they are dependencies on Linux): lower latency."""
    import importlib.util

    stack = {}
    if importlib.util.find_spec("uvloop") is not None:
        stack["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        stack["http"] = "httptools"
    return stack


def _serve(settings: Settings, config: Config, path: Path | None) -> int:
    import uvicorn  # imported late: --version and --help stay fast

    from toolman import logs
    from toolman.app import create_app

    logs.configure(settings.log_level, settings.log_format)
    if path is None:
        log.warning(
            "no config file at %s: serving with no downstream servers", settings.config_path
        )
    app = create_app(settings, config, config_path=path)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # End sessions first so open GET streams close and shutdown is not
            # held up by them until the graceful-shutdown timeout.
            loop = app.gateway.loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(app.gateway.sessions.end_all)
            super().handle_exit(sig, frame)

    server = Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            log_level=settings.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            **_fast_stack(),  # type: ignore[arg-type]
        )
    )
    server.run()
    return 0 if server.started else 1
