"""A small typed client of the task API (`/api/v1/tasks`) over a sync `httpx.Client`:
create, get, list, cancel and the logs. Every failure leaves it as `ApiError`
(errors.py), mapped here at the boundary with `raise ... from exc`.

Tests hand in their own `transport` (httpx's test seam); the commands never do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator.client.errors import ApiError, FieldError, Kind, malformed
from orchestrator.client.task import Task, TaskPage

API = "/api/v1/tasks"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
START_PATIENCE = 10.0  # seconds `task run` waits for an orchestrator that is starting
STREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=None)  # a quiet agent is not an error
TOKEN_ENV = "ORCHESTRATOR_TOKEN"  # noqa: S105 - the variable's name, not a token
# Statuses whose `detail` is the whole message. 400 and 413: a body the server cannot
# take (not UTF-8, too large); 422 has its own shape.
REFUSALS = {400: Kind.INVALID, 404: Kind.NOT_FOUND, 409: Kind.CONFLICT, 413: Kind.INVALID}


class ApiClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        token_source: str = TOKEN_ENV,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token_source = token_source  # `ORCHESTRATOR_TOKEN` or `--token`, for a 401
        self.has_token = bool(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------

    def create(
        self,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        patience: float = START_PATIENCE,
    ) -> Task:
        """POST the task. A refused connection is tried again for `patience` seconds (the
        request never reached a server, so this cannot make two tasks): an orchestrator
        started a moment ago may not listen yet."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        deadline = time.monotonic() + patience
        while True:
            try:
                return Task.parse(self._json("POST", API, body=body, headers=headers))
            except ApiError as exc:
                refused = isinstance(exc.__cause__, httpx.ConnectError)
                if not refused or time.monotonic() >= deadline:
                    raise
            time.sleep(0.25)

    def get(self, task_id: str) -> Task:
        return Task.parse(self._json("GET", _task_path(task_id)))

    def list(
        self,
        *,
        phases: Sequence[str] = (),
        labels: Sequence[str] = (),
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> TaskPage:
        params: list[tuple[str, str | int]] = [("phase", p) for p in phases]
        params += [("label", label) for label in labels]
        params.append(("limit", limit))
        if newest_first:
            params.append(("order", "newest"))
        if cursor:
            params.append(("cursor", cursor))
        return TaskPage.parse(self._json("GET", API, params=params))

    def cancel(self, task_id: str) -> Task:
        return Task.parse(self._json("POST", f"{_task_path(task_id)}/cancel"))

    @contextmanager
    def logs(
        self, task_id: str, stream: str = "agent", *, follow: bool
    ) -> Iterator[Iterator[bytes]]:
        """The log's chunks as they come; a break after the start is `Kind.STREAM`."""
        params = {"stream": stream, "follow": "true" if follow else "false"}
        try:
            with self._http.stream(
                "GET", f"{_task_path(task_id)}/logs", params=params, timeout=STREAM_TIMEOUT
            ) as response:
                if response.is_error:
                    response.read()
                    raise self._refusal(response)
                yield self._chunks(response)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    # -- the mapping -----------------------------------------------------------------------

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ApiError(
                Kind.STREAM,
                f"the log stream from {self.url} broke ({_reason(exc)}); "
                "the orchestrator's own log says why",
            ) from exc

    def _json(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Sequence[tuple[str, str | int]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> object:
        try:
            response = self._http.request(
                method, path, json=body, params=list(params), headers=headers
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise self._refusal(response)
        try:
            answer: object = response.json()
        except ValueError as exc:
            raise malformed(self.url, "its answer is not JSON") from exc
        return answer

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(
            Kind.UNREACHABLE,
            f"cannot reach the orchestrator at {self.url} ({_reason(exc)}); "
            "start it with `orchestrator serve` or pass --url",
        )

    def _refusal(self, response: httpx.Response) -> ApiError:
        detail = _detail(response)
        status = response.status_code
        if status == 401:
            return self._unauthorized(detail)
        if status == 422 and isinstance(detail, list):
            fields = [FieldError.of(item) for item in detail if isinstance(item, dict)]
            message = "; ".join(f"{f.path}: {f.message}" for f in fields)
            return ApiError(Kind.INVALID, message or "the request is not valid", fields)
        if status == 404 and _text(detail) in ("", "Not Found"):  # no route, not no task
            return ApiError(
                Kind.NOT_FOUND,
                f"the server at {self.url} has nothing at {response.request.url.path}; "
                "is it the orchestrator, and is the id whole?",
            )
        if status in REFUSALS:
            text = _text(detail) or f"{response.request.url.path}: refused ({status})"
            return ApiError(REFUSALS[status], text)
        return ApiError(
            Kind.UNREACHABLE,
            f"the orchestrator at {self.url} answered {status}"
            + (f": {_text(detail)}" if detail else ""),
        )

    def _unauthorized(self, detail: object) -> ApiError:
        if not self.has_token:
            return ApiError(
                Kind.UNAUTHORIZED,
                f"the orchestrator at {self.url} wants a token: set {TOKEN_ENV} (or pass --token)",
            )
        return ApiError(
            Kind.UNAUTHORIZED,
            f"the orchestrator at {self.url} refused the token from {self.token_source} "
            f"({_text(detail)}); set {TOKEN_ENV} to a token it knows",
        )


def _task_path(task_id: str) -> str:
    """The task's URL path; an id is one path segment, whatever it holds (`../health`)."""
    return f"{API}/{quote(task_id, safe='')}"


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    text = str(exc).strip()
    if "Connection refused" in text:
        return "connection refused"
    return text or type(exc).__name__


def _detail(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    return body.get("detail") if isinstance(body, dict) else body


def _text(detail: object) -> str:
    return detail if isinstance(detail, str) else str(detail or "")
