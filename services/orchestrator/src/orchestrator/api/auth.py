"""Bearer tokens for the API. The config holds only SHA-256 digests or `{"env"}` /
`{"file"}` references (toolman's rules, resolved by toolman's code); the
`ORCHESTRATOR_TOKEN` variable adds one more. Health, readiness and metrics are open:
probes and scrapers carry no token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fastapi import HTTPException, Request

from orchestrator.config import Auth, ConfigError
from toolman.errors import ConfigError as ToolmanConfigError
from toolman.secrets import token_digest

TOKEN_ENV = "ORCHESTRATOR_TOKEN"  # noqa: S105 - the variable's name, not a token
NOT_CONFIGURED = (
    f"no API token is configured: set {TOKEN_ENV}, or auth.tokens in the orchestrator's "
    "config (auth.anonymous: true serves the API without tokens, for one user on loopback)"
)


class TokenCheck:
    def __init__(self, digests: Mapping[str, str], anonymous: bool) -> None:
        self.digests = dict(digests)  # sha256 hex -> token name
        self.anonymous = anonymous

    @classmethod
    def from_config(cls, auth: Auth, environ: Mapping[str, str]) -> TokenCheck:
        digests: dict[str, str] = {}
        for index, token in enumerate(auth.tokens):
            item = token.model_dump(exclude_none=True, exclude={"name"})
            try:
                digests[token_digest(item, f"auth.tokens[{index}]", environ)] = token.name
            except ToolmanConfigError as exc:
                raise ConfigError(str(exc)) from None
        if environ.get(TOKEN_ENV):
            digests[hashlib.sha256(environ[TOKEN_ENV].encode()).hexdigest()] = TOKEN_ENV
        return cls(digests, auth.anonymous and not digests)

    @property
    def configured(self) -> bool:
        return self.anonymous or bool(self.digests)

    def caller(self, authorization: str | None) -> str:
        """The token's name; HTTPException 401 without a known token, 503 while no token
        is configured at all (the API stays closed; health and metrics still answer)."""
        if self.anonymous:
            return "anonymous"
        if not self.digests:
            raise HTTPException(503, detail=NOT_CONFIGURED)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("send `Authorization: Bearer <token>`")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        for known, name in self.digests.items():
            if hmac.compare_digest(known, digest):
                return name
        raise _unauthorized("the token is not known")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="orchestrator"'}
    )


def require_token(request: Request) -> str:
    check: TokenCheck = request.app.state.tokens
    return check.caller(request.headers.get("authorization"))
