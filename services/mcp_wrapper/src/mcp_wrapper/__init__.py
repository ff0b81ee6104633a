"""stdio to Streamable HTTP MCP forwarder for agent containers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcp-wrapper")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
