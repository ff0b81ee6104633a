"""One error hierarchy for the package.

    ToolmanError
    ├── ConfigError            the config file or an env setting is unusable (start-up, reload)
    ├── HttpReject             a request refused at the HTTP layer (status + JSON-RPC error body)
    │   └── AuthError          its identity, Host or Origin is refused (401/403/421)
    ├── RpcError               a JSON-RPC error to send back to the client (code, message, data)
    │   └── DownstreamError    the call reached toolman but its downstream could not answer
    │       ├── DownstreamUnavailable   the server is down, restarting or not started
    │       └── DownstreamTimeout       the server did not answer in time
    └── TransportClosed        a downstream connection ended (the supervisor restarts it)

Errors are mapped at the boundary: the HTTP layer turns HttpReject into its
status and RpcError into a JSON-RPC error object; cli.py turns ConfigError
into exit 2.
"""

from __future__ import annotations

from typing import Any

# JSON-RPC 2.0 codes, and the gateway's own in the implementation-defined range.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002  # MCP: resources/read of an unknown URI
DOWNSTREAM_UNAVAILABLE = -32010
DOWNSTREAM_TIMEOUT = -32011
TOO_MANY_SESSIONS = -32012  # http.max_sessions reached and every session is busy
MISSING_CAPABILITY = -32021  # 2026-07-28: the request needs a capability the client lacks
REQUEST_CANCELLED = -32800


class ToolmanError(Exception):
    """Base class of every error toolman raises on purpose."""


class ConfigError(ToolmanError):
    """The configuration cannot be used; the message names the key and the fix."""


class RpcError(ToolmanError):
    """An error answered to the client as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class HttpReject(ToolmanError):
    """Refused before MCP handling: an HTTP status, with a JSON-RPC error as the body."""

    def __init__(
        self,
        status: int,
        error: RpcError,
        *,
        request_id: str | int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.request_id = request_id
        self.headers = headers or {}


class AuthError(HttpReject):
    """Identity, Host or Origin refused."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, RpcError(INVALID_REQUEST, message), headers=headers)


class DownstreamError(RpcError):
    """A downstream server could not produce an answer."""


class DownstreamUnavailable(DownstreamError):
    def __init__(self, server: str, reason: str) -> None:
        super().__init__(
            DOWNSTREAM_UNAVAILABLE,
            f"server {server!r} is unavailable: {reason}",
            {"server": server},
        )


class DownstreamTimeout(DownstreamError):
    def __init__(self, server: str, seconds: float) -> None:
        super().__init__(
            DOWNSTREAM_TIMEOUT,
            f"server {server!r} did not answer within {seconds:g} s",
            {"server": server},
        )


class TransportClosed(ToolmanError):
    """A downstream connection is gone; pending requests fail with DownstreamUnavailable."""
