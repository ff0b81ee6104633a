"""The one exception the client raises, `ApiError`: a message for people and the exit
code the command line uses. `http.py` maps every failure to it at the boundary
(`raise ... from exc`), as httpx draws its own tree:

    ApiError.kind      exit  when
    ├── unreachable      3   no connection, a timeout, a closed connection, a 5xx,
    │                        an answer this client cannot read
    ├── unauthorized     3   401: the token is missing or unknown
    ├── invalid          2   422: `fields` holds each `field.path: message`; 400, 413
    ├── not_found        4   404
    ├── conflict         5   409: the server's own detail
    └── stream           3   a log stream broke after it had started
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Kind(enum.StrEnum):
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    STREAM = "stream"


EXIT_CODES = {
    Kind.UNREACHABLE: 3,
    Kind.UNAUTHORIZED: 3,
    Kind.INVALID: 2,
    Kind.NOT_FOUND: 4,
    Kind.CONFLICT: 5,
    Kind.STREAM: 3,
}


@dataclass(frozen=True)
class FieldError:
    """One entry of a 422, its `path` as people write it: `tools.servers[0]`."""

    path: str
    message: str
    location: tuple[str | int, ...]  # without `body`/`query`: names the option behind it

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> FieldError:
        """FastAPI's `{"loc": ["body", "tools", "servers", 0], "msg": ...}`."""
        location = [part for part in item.get("loc", []) if isinstance(part, str | int)]
        if location and location[0] in ("body", "query", "path", "header"):
            location = location[1:]
        path = ""
        for part in location:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part == "[key]":
                path += " (the key)"
            elif part.isidentifier():
                path += f".{part}" if path else part
            else:
                path += f"[{part!r}]"
        message = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        return cls(path or "the request", message, tuple(location))


class ApiError(Exception):
    """The orchestrator could not do what was asked; `message` says what to do."""

    def __init__(self, kind: Kind, message: str, fields: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fields = tuple(fields)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


def malformed(url: str, what: str) -> ApiError:
    """An answer this client cannot read."""
    where = f" at {url}" if url else ""
    return ApiError(
        Kind.UNREACHABLE,
        f"the orchestrator{where} answered something this client does not understand "
        f"({what}); are the client and the server the same version (`orchestrator --version`)?",
    )
