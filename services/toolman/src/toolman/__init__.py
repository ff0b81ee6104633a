"""MCP gateway with tool filtering and per-agent access control."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("toolman")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
