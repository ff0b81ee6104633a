"""Connections to downstream MCP servers: stdio child processes and remote Streamable HTTP."""

from toolman.downstream.base import Connection, NotificationHandler, ProgressHandler
from toolman.downstream.http import HttpConnection
from toolman.downstream.stdio import StdioConnection

__all__ = [
    "Connection",
    "HttpConnection",
    "NotificationHandler",
    "ProgressHandler",
    "StdioConnection",
]
