"""stdio to Streamable HTTP MCP forwarder for agent containers."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Computed on first use: importlib.metadata costs ~10 ms of start-up that
    # only --version and the User-Agent header need.
    if name != "__version__":
        raise AttributeError(f"module 'mcp_wrapper' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("mcp-wrapper")
    except PackageNotFoundError:  # a source tree that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value
