"""A 2025 downstream's sampling or elicitation during a 2026-07-28 call: ``input_required``.

The modern revision has no server-to-client requests. When the downstream asks
during a call, the call keeps running in toolman (waiting for that answer) and
the client gets ``resultType: "input_required"`` with the question under
``inputRequests`` and a ``requestState``; it retries the same request with
``inputResponses`` and that state, and toolman hands the answers to the
waiting downstream and goes on. ``requestState`` names the waiting call and is
signed with a key only this process knows, for this agent, and expires: a
changed, foreign or stale one is refused with -32602. Unanswered, a waiting
call is cancelled (downstream too) after WAIT_SECONDS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from toolman.errors import INVALID_PARAMS, RpcError

Message = dict[str, Any]
WAIT_SECONDS = 120.0
_KEY = secrets.token_bytes(32)


@dataclass(eq=False)
class Suspended:
    """One call in flight, and the questions it waits on (key -> method, params, answer)."""

    agent: str
    task: asyncio.Task[Message] | None = None
    questions: dict[str, tuple[str, Message, asyncio.Future[Message]]] = field(default_factory=dict)
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: asyncio.TimerHandle | None = None
    _keys: itertools.count[int] = field(default_factory=itertools.count)

    async def ask(self, method: str, params: Message) -> Message:
        """The downstream's question (CallChannel's asker): wait for the client's answer."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.questions[f"q{next(self._keys)}"] = (method, params, future)
        self.asked.set()
        return await future

    def open_questions(self) -> dict[str, Message]:
        return {
            key: {"method": method, "params": params}
            for key, (method, params, future) in self.questions.items()
            if not future.done()
        }

    def answer(self, responses: object) -> None:
        if not isinstance(responses, dict):
            return
        for key, response in responses.items():
            question = self.questions.get(key)
            if question is not None and isinstance(response, dict) and not question[2].done():
                question[2].set_result(response)


class Waiting:
    """The calls waiting for their clients' answers, by signed ``requestState``."""

    def __init__(self) -> None:
        self._calls: dict[str, Suspended] = {}
        self._ids = itertools.count(1)

    def _sign(self, call_id: str, agent: str, expires: int) -> str:
        payload = f"{call_id}.{expires}".encode()
        mac = hmac.new(_KEY, payload + b"." + agent.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + b"." + mac).decode()

    def resume(self, state: object, agent: str) -> Suspended:
        """The call a client's ``requestState`` names; -32602 for anything else."""
        invalid = RpcError(
            INVALID_PARAMS, "requestState is not valid (changed, foreign or expired)"
        )
        if not isinstance(state, str) or not state.isascii():  # compare_digest wants ASCII
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(state.encode())
            call_id, expires_text, _mac = raw.decode("latin-1").split(".", 2)
            expires = int(expires_text)
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
            raise invalid from None
        if not hmac.compare_digest(state, self._sign(call_id, agent, expires)):
            raise invalid
        call = self._calls.get(call_id)
        if call is None or expires < time.time() or call.agent != agent:
            raise invalid
        return call

    async def run(self, call: Suspended, start: Callable[[], Awaitable[Message]] | None) -> Message:
        """Start (or go on with) a call; its result, or ``input_required`` while it waits."""
        if start is not None:
            call.task = asyncio.ensure_future(start())
        elif call.open_questions():  # retried without every answer: ask again
            return self._input_required(call)
        assert call.task is not None
        call.asked.clear()
        asked = asyncio.ensure_future(call.asked.wait())
        try:
            await asyncio.wait({call.task, asked}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.abandon(call)  # the client left while the call ran: stop it downstream too
            raise
        finally:
            asked.cancel()
        if call.task.done():
            self._forget(call)
            return call.task.result()
        return self._input_required(call)

    def _input_required(self, call: Suspended) -> Message:
        call_id = next((k for k, v in self._calls.items() if v is call), None)
        if call_id is None:
            call_id = str(next(self._ids))
            self._calls[call_id] = call
        if call.deadline is not None:
            call.deadline.cancel()
        call.deadline = asyncio.get_running_loop().call_later(WAIT_SECONDS, self._expire, call)
        expires = int(time.time() + WAIT_SECONDS)
        return {
            "resultType": "input_required",
            "inputRequests": call.open_questions(),
            "requestState": self._sign(call_id, call.agent, expires),
        }

    def abandon(self, call: Suspended) -> None:
        """The client went away before the call finished or asked anything."""
        if call not in self._calls.values() and call.task is not None:
            call.task.cancel()

    def _expire(self, call: Suspended) -> None:
        if call.task is not None:
            call.task.cancel()
        self._forget(call)

    def _forget(self, call: Suspended) -> None:
        if call.deadline is not None:
            call.deadline.cancel()
        for call_id, waiting in list(self._calls.items()):
            if waiting is call:
                del self._calls[call_id]
