"""Command line: the only place that prints errors and exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

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


def _serve(settings: Settings, config: Config, path: Path | None) -> int:
    from toolman import logs
    from toolman.app import create_app
    from toolman.server import serve  # imported late: --version and --help stay fast

    logs.configure(settings.log_level, settings.log_format)
    if path is None:
        log.warning(
            "no config file at %s: serving with no downstream servers", settings.config_path
        )
    return 0 if serve(create_app(settings, config, config_path=path), settings) else 1
