"""What a downstream sends while it works on a forwarded call, relayed to that call's client.

A remote (Streamable HTTP) downstream sends the messages related to a call on
that call's own SSE stream, so toolman knows whose they are:

- ``notifications/message`` (log lines the tool writes while it runs) go to
  the client's stream of the same call, unless below the level that client's
  session asked for with ``logging/setLevel`` (the downstream is shared, so
  it is set to the lowest level any live session asked for);
- ``sampling/createMessage`` and ``elicitation/create`` become requests from
  toolman to that client, on the same stream, with an id toolman chooses; the
  client's answer (a POST in its session) goes back to the downstream. A client
  that did not declare the capability, or whose call cannot carry a stream,
  gets the downstream an error instead, at once.

Progress has its own path (tokens rewritten per connection, in downstream/base).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from toolman.errors import INTERNAL_ERROR, METHOD_NOT_FOUND, MISSING_CAPABILITY, RpcError

Message = dict[str, Any]

# The server-to-client requests toolman relays, and the client capability each needs.
RELAYED_REQUESTS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation"}
RELAYED_NOTIFICATIONS = frozenset({"notifications/message"})
# logging/setLevel's levels, least severe first (RFC 5424 order).
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


def below(level: object, threshold: str | None) -> bool:
    """A log line's level is below what its session asked for (unknown levels pass)."""
    if threshold is None or level not in LEVELS or threshold not in LEVELS:
        return False
    return LEVELS.index(str(level)) < LEVELS.index(threshold)


@dataclass(eq=False)
class Outstanding:
    """toolman's requests to one session's client, waiting for the client's answers."""

    waiting: dict[str, asyncio.Future[Message]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def new_id(self) -> str:
        return f"toolman-{next(self._ids)}"

    def answered(self, request_id: object, answer: Message) -> bool:
        """The client's response to one of them; False when nobody waits for that id."""
        future = self.waiting.get(str(request_id)) if isinstance(request_id, str) else None
        if future is None or future.done():
            return False
        future.set_result(answer)
        return True

    def cancel_all(self) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.cancel()


class CallChannel:
    """The client end of one forwarded call (given to the downstream connection)."""

    def __init__(
        self,
        capabilities: Message,
        outstanding: Outstanding,
        emit: Callable[[Message], None] | None,
        asker: Callable[[str, Message], Awaitable[Message]] | None = None,
        log_level: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._capabilities = capabilities
        self._log_level = log_level  # the session's logging/setLevel, read per line
        self._outstanding = outstanding
        self._emit = emit  # None: the call is answered as plain JSON, nothing can go first
        self._asker = asker  # 2026-07-28: questions become input_required (toolman.suspended)

    def notify(self, message: Message) -> None:
        if self._emit is None or message.get("method") not in RELAYED_NOTIFICATIONS:
            return
        params = message.get("params")
        level = params.get("level") if isinstance(params, dict) else None
        if not below(level, self._log_level()):
            self._emit(message)

    async def ask(self, method: str, params: Message) -> Message:
        """Ask the client; its result, or RpcError with its error (or why it cannot be asked)."""
        capability = RELAYED_REQUESTS.get(method)
        if capability is None:
            raise RpcError(METHOD_NOT_FOUND, f"toolman does not relay {method}")
        if capability not in self._capabilities:
            raise RpcError(
                MISSING_CAPABILITY,
                f"the client did not declare {capability}",
                {"requiredCapabilities": {capability: {}}},
            )
        if self._asker is not None:
            return await self._asker(method, params)
        if self._emit is None:
            raise RpcError(METHOD_NOT_FOUND, f"the client's call cannot carry {method}")
        request_id = self._outstanding.new_id()
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._outstanding.waiting[request_id] = future
        try:
            self._emit({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            answer = await future
        finally:
            self._outstanding.waiting.pop(request_id, None)
        error = answer.get("error")
        if isinstance(error, dict):
            code, text = error.get("code"), error.get("message")
            raise RpcError(
                code if isinstance(code, int) else INTERNAL_ERROR,
                text if isinstance(text, str) else "client error",
                error.get("data"),
            )
        result = answer.get("result")
        return result if isinstance(result, dict) else {}
