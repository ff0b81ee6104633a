"""Methods toolman passes to the downstream that owns them: logging, completion, subscriptions.

- ``logging/setLevel`` is remembered on the session, which then receives only
  log lines at that level or above (toolman.related). A downstream is shared,
  so every ready server the agent may use that offers ``logging`` is set to the
  lowest level any live session that may use it asked for.
- ``completion/complete`` goes to the server of the prompt (by its exposed name,
  renamed back) or of the resource template (by its ``uriTemplate``) in the
  agent's view; a server without ``completions`` completes nothing.
- ``resources/subscribe`` / ``unsubscribe`` go to the server of the URI in the
  agent's view. The downstream subscription is shared by every session that
  asked for the URI: it is made by the first and dropped with the last, and a
  ``notifications/resources/updated`` from the server reaches exactly the
  sessions subscribed to that URI (on their GET stream).

Anything not in the agent's view is refused exactly like a read of it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from toolman.errors import INVALID_PARAMS, RESOURCE_NOT_FOUND, RpcError
from toolman.related import LEVELS
from toolman.supervisor import State

if TYPE_CHECKING:
    from toolman.gateway import Gateway
    from toolman.sessions import Session

NO_COMPLETION: dict[str, Any] = {"completion": {"values": [], "hasMore": False}}


class Relayed:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._subscribers: dict[tuple[str, str], set[Session]] = defaultdict(set)

    def _offers(self, server: str, capability: str, feature: str | None = None) -> bool:
        supervisor = self._gateway.supervisors.get(server)
        if supervisor is None or supervisor.state is not State.READY or not supervisor.catalog:
            return False
        offered = supervisor.catalog.capabilities.get(capability)
        if feature is None:
            return isinstance(offered, dict)
        return isinstance(offered, dict) and offered.get(feature) is True

    def capabilities(self, agent: str) -> dict[str, Any]:
        """What the agent's servers offer of these, for toolman's initialize result."""
        rules = self._gateway.config.rules
        allowed = [s for s in self._gateway.supervisors if rules.server_allowed(agent, s)]
        extra: dict[str, Any] = {}
        if any(self._offers(s, "logging") for s in allowed):
            extra["logging"] = {}
        if any(self._offers(s, "completions") for s in allowed):
            extra["completions"] = {}
        return extra

    def subscribable(self, agent: str) -> bool:
        rules = self._gateway.config.rules
        return any(
            self._offers(s, "resources", "subscribe")
            for s in self._gateway.supervisors
            if rules.server_allowed(agent, s)
        )

    async def set_level(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        level = params.get("level")
        if level not in LEVELS:
            raise RpcError(INVALID_PARAMS, f"logging/setLevel needs a level, one of {LEVELS}")
        session.log_level = str(level)
        rules = self._gateway.config.rules
        for name, supervisor in list(self._gateway.supervisors.items()):
            if rules.server_allowed(session.agent, name) and self._offers(name, "logging"):
                await supervisor.call("logging/setLevel", {"level": self._lowest(name)})
        return {}

    def _lowest(self, server: str) -> str:
        """The least severe level asked for by a live session that may use ``server``."""
        rules = self._gateway.config.rules
        asked = {
            s.log_level
            for s in self._gateway.sessions
            if s.log_level in LEVELS
            and not s.ended.is_set()
            and rules.server_allowed(s.agent, server)
        }
        return min(asked, key=LEVELS.index, default="debug")

    async def complete(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        ref = params.get("ref")
        if not isinstance(ref, dict) or not isinstance(params.get("argument"), dict):
            raise RpcError(INVALID_PARAMS, 'completion/complete needs a "ref" and an "argument"')
        view = self._gateway.catalog.view(session.agent)
        if ref.get("type") == "ref/prompt":
            entry = view.prompt_index.get(str(ref.get("name")))
            if entry is None:
                raise RpcError(INVALID_PARAMS, f"Unknown prompt: {ref.get('name')}")
            server, forwarded = entry.server, {**params, "ref": {**ref, "name": entry.name}}
        elif ref.get("type") == "ref/resource":
            found = view.server_for_template(str(ref.get("uri")))
            if found is None:
                raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": ref.get("uri")})
            server, forwarded = found, params
        else:
            raise RpcError(
                INVALID_PARAMS, 'completion/complete "ref.type" must be ref/prompt or ref/resource'
            )
        if not self._offers(server, "completions"):
            return NO_COMPLETION
        return await self._gateway.supervisors[server].call("completion/complete", forwarded)

    def _server_for(self, session: Session, params: dict[str, Any], method: str) -> tuple[str, str]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, f'{method} needs a string "uri"')
        server = self._gateway.catalog.view(session.agent).server_for_uri(uri)
        if server is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri})
        if not self._offers(server, "resources", "subscribe"):
            raise RpcError(INVALID_PARAMS, f"server {server!r} offers no resource subscriptions")
        return server, uri

    async def subscribe(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        server, uri = self._server_for(session, params, "resources/subscribe")
        sessions = self._subscribers[(server, uri)]
        live = {s for s in sessions if not s.ended.is_set()}
        if not live:
            await self._gateway.supervisors[server].call("resources/subscribe", {"uri": uri})
        self._subscribers[(server, uri)] = live | {session}
        return {}

    async def unsubscribe(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        server, uri = self._server_for(session, params, "resources/unsubscribe")
        sessions = self._subscribers.get((server, uri), set())
        sessions.discard(session)
        if not {s for s in sessions if not s.ended.is_set()}:
            self._subscribers.pop((server, uri), None)
            await self._gateway.supervisors[server].call("resources/unsubscribe", {"uri": uri})
        return {}

    def updated(self, server: str, uri: str) -> None:
        """A server's ``notifications/resources/updated``: to the sessions subscribed to it."""
        for session in list(self._subscribers.get((server, uri), ())):
            if session.ended.is_set():
                self._subscribers[(server, uri)].discard(session)
            else:
                session.notify("notifications/resources/updated", {"uri": uri})
