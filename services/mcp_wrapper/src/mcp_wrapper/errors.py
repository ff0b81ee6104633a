"""The one error hierarchy of mcp-wrapper.

    WrapperError
    ├── ConfigError            bad environment / URL; the CLI exits 2
    └── UpstreamError          talking to toolman failed; becomes a JSON-RPC error
        ├── UnreachableError   no TCP/TLS connection could be made
        ├── ConnectionLost     the connection dropped before the answer was complete
        ├── UpstreamHTTPError  toolman answered with an HTTP status we cannot use
        └── UpstreamProtocolError  toolman's bytes are not valid HTTP / SSE / JSON-RPC

Every ``UpstreamError`` carries the JSON-RPC error code the forwarder answers
with, so the mapping lives next to the cause instead of in a big ``except``.
Messages never contain the bearer token: it is only ever put into a header.
"""

from __future__ import annotations

from mcp_wrapper import jsonrpc


class WrapperError(Exception):
    """Base of every error mcp-wrapper raises on purpose."""


class ConfigError(WrapperError):
    """An environment variable or argument is invalid; the message names it and the fix."""


class UpstreamError(WrapperError):
    """Forwarding one message to toolman failed."""

    code: int = jsonrpc.UPSTREAM_ERROR


class UnreachableError(UpstreamError):
    """Connecting to toolman failed (refused, DNS, TLS handshake)."""


class ConnectionLost(UpstreamError):
    """toolman closed the connection before the exchange was complete.

    ``response_started`` tells whether any byte of the answer arrived: only a
    request on a reused keep-alive connection that got *nothing* back may be
    retried, and never a ``tools/call``.
    """

    def __init__(self, message: str, *, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started


class UpstreamHTTPError(UpstreamError):
    """toolman answered with a status (4xx/5xx, or 202 to a request) and no JSON-RPC error."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class UpstreamProtocolError(UpstreamError):
    """The answer is not valid HTTP/1.1, SSE or JSON-RPC."""

    code = jsonrpc.INTERNAL_ERROR
