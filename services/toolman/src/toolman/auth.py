"""Who is calling, and from where: bearer tokens, Origin and Host checks for /mcp.

With tokens in the config, every request must carry ``Authorization: Bearer
<token>``; the token's SHA-256 picks the agent. Without tokens (the sidecar
case) every request is the agent named by ``AGENT_NAME``. Origin, when a
browser sends one, must be allow-listed (403), and Host must match the
allow-list (421) so that DNS rebinding cannot reach a local toolman. A
loopback Origin (``http://localhost:6274``, the MCP Inspector's) is served
without listing when the request's Host is itself a loopback name: the page
then runs on this machine, and a rebinding page would carry its own Host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from toolman.errors import AuthError
from toolman.secrets import sha256_hex

REALM = 'Bearer realm="toolman"'
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(host: str) -> str:
    """``host:port`` or ``[v6]:port`` without the port, lower-cased, without a trailing dot.

    ``toolman.ns.svc.cluster.local.`` (a fully qualified name, as some resolvers
    and clients send it) is the same host as ``toolman.ns.svc.cluster.local``.
    """
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.removesuffix(".")


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Match the Host header's name (any port) against names or globs (``*.svc.cluster.local``).

    Case-insensitive, and a trailing dot on either side is ignored.
    """
    if not host:
        return False
    name = host_name(host)
    return bool(name) and any(
        fnmatchcase(name, pattern.strip().lower().removesuffix(".")) for pattern in allowed
    )


def is_loopback_origin(origin: str) -> bool:
    """``http(s)://localhost``, ``127.0.0.1`` or ``[::1]``, any port, nothing after it."""
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or "/" in rest or "@" in rest:
        return False
    return host_name(rest) in LOOPBACK


def origin_allowed(origin: str | None, allowed: Sequence[str], host: str | None = None) -> bool:
    if origin is None:
        return True  # not a browser: nothing to validate
    origin = origin.lower().rstrip("/")
    if host is not None and host_name(host) in LOOPBACK and is_loopback_origin(origin):
        return True
    return any(fnmatchcase(origin, pattern.lower().rstrip("/")) for pattern in allowed)


class Authenticator:
    def __init__(self, tokens: Mapping[str, str], default_agent: str) -> None:
        self._tokens = dict(tokens)  # sha256 hex -> agent
        self._default = default_agent

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def agent(self, authorization: str | None) -> str:
        """The agent for this ``Authorization`` header, or AuthError(401)."""
        if not self._tokens:
            return self._default
        if not authorization:
            raise AuthError(401, "missing bearer token", headers={"www-authenticate": REALM})
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(
                401,
                "expected 'Authorization: Bearer <token>'",
                headers={"www-authenticate": f'{REALM}, error="invalid_request"'},
            )
        agent = self._tokens.get(sha256_hex(token))
        if agent is None:
            raise AuthError(
                401,
                "invalid bearer token",
                headers={"www-authenticate": f'{REALM}, error="invalid_token"'},
            )
        return agent


def check_request(
    headers: Mapping[str, str], allowed_hosts: Sequence[str], allowed_origins: Sequence[str]
) -> None:
    """Host and Origin checks, before anything else is read."""
    if not host_allowed(headers.get("host"), allowed_hosts):
        raise AuthError(421, "Host header not allowed; add it to http.allowed_hosts")
    if not origin_allowed(headers.get("origin"), allowed_origins, headers.get("host")):
        raise AuthError(403, "Origin not allowed; add it to http.allowed_origins")
