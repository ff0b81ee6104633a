"""Command line: the only place that prints errors and exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mcp_wrapper import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-wrapper",
        description="Forward MCP JSON-RPC between stdio and toolman's Streamable HTTP endpoint.",
        epilog="Environment: MCP_TOOLMAN_SERVER_URL (default http://localhost:3000/mcp).",
    )
    parser.add_argument("--version", action="version", version=f"mcp-wrapper {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("mcp-wrapper: direct mode is not available in this build", file=sys.stderr)
    return 1
