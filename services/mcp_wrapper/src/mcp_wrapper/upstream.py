"""The client half of MCP's Streamable HTTP transport, talking to toolman.

One ``Upstream`` is one MCP session: it POSTs each message, reads the answer
as JSON or as an SSE stream (forwarding the server's own requests and
notifications found there), keeps ``Mcp-Session-Id`` and
``MCP-Protocol-Version`` after ``initialize``, listens on the GET stream,
re-initializes transparently when toolman forgot the session (404) and then tells
the client its tool list may have changed, resumes an
interrupted SSE answer with ``Last-Event-ID``, and ends the session with DELETE.
Timeouts are the caller's: every method here may simply be cancelled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import (
    ConnectionLost,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamProtocolError,
)
from mcp_wrapper.events import EventStreamReader, listen
from mcp_wrapper.headers import HEADER_SAFE, modern_headers
from mcp_wrapper.http11 import HttpClient, Response
from mcp_wrapper.params import ParamHeaders
from mcp_wrapper.replies import error_reply, parse_message, status_error
from mcp_wrapper.settings import Settings

log = logging.getLogger("mcp_wrapper")

Emit = Callable[[jsonrpc.Message], Awaitable[None]]
POST_ACCEPT = "application/json, text/event-stream"
MAX_RESUMES = 3
DELETE_TIMEOUT = 2.0


class Upstream:
    def __init__(self, settings: Settings, emit: Emit, http: HttpClient | None = None) -> None:
        self._settings = settings
        self._emit = emit
        # No version in the User-Agent: looking it up (importlib.metadata) costs ~15 ms of start-up.
        self._http = http or HttpClient(settings.endpoint, user_agent="mcp-wrapper")
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._init_params: object = None
        self._client_ready = False  # the client's own notifications/initialized got through
        self._reinit_lock = asyncio.Lock()
        self._reinit_ids = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._params = ParamHeaders()  # Mcp-Param-* marks from 2026-era tools/list answers

    # -- the two things a client sends ------------------------------------------------

    async def request(self, message: jsonrpc.Message) -> jsonrpc.Message:
        """POST a request and return its response; server messages on the way are emitted."""
        started = time.perf_counter()
        for attempt in (1, 2):
            sent_session = self.session_id
            async with await self._post(message) as response:
                if not self._expired(response, sent_session, message, attempt):
                    answer = await self._answer(message, response)
                    if message.get("method") == "tools/list" and jsonrpc.modern_version(message):
                        self._params.learn(answer)
                    log.debug(
                        "<- id=%s HTTP %d %s in %.2f ms",
                        message["id"],
                        response.status,
                        response.content_type,
                        (time.perf_counter() - started) * 1000,
                    )
                    return answer
            await self._reinitialize(sent_session)
        raise AssertionError("unreachable: the second attempt never re-initializes")

    async def notify(self, message: jsonrpc.Message) -> None:
        """POST a notification, or the client's response to a server request: never answered."""
        for attempt in (1, 2):
            sent_session = self.session_id
            async with await self._post(message) as response:
                if not self._expired(response, sent_session, message, attempt):
                    await self._accepted(message, response)
                    if message.get("method") == "notifications/initialized":
                        self._client_ready = True
                    return
            await self._reinitialize(sent_session)

    async def close(self) -> None:
        """Stop listening and end the session with DELETE (bounded; failures only logged)."""
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self.session_id is not None:
            try:
                async with asyncio.timeout(min(self._settings.timeout, DELETE_TIMEOUT)):
                    async with await self._http.request("DELETE", self._headers()) as response:
                        log.debug("DELETE session: HTTP %d", response.status)
            except (UpstreamError, TimeoutError) as exc:
                log.debug("could not end the session: %s", exc)
        await self._http.aclose()

    # -- HTTP exchanges ---------------------------------------------------------------

    async def _post(self, message: jsonrpc.Message) -> Response:
        method = message.get("method")
        log.debug("-> %s id=%s", method or "response", message.get("id"))
        return await self._http.request(
            "POST",
            self._headers(message),
            jsonrpc.encode_body(message),
            # A tools/call may have side effects: never risk sending it twice.
            retry_stale=method != "tools/call",
        )

    def _headers(self, message: jsonrpc.Message | None = None) -> dict[str, str]:
        headers = {"Accept": POST_ACCEPT, "Content-Type": "application/json"}
        if message is None:
            headers = {"Accept": "text/event-stream"}
        if self._settings.token:
            headers["Authorization"] = f"Bearer {self._settings.token}"
        if message is not None and (modern := jsonrpc.modern_version(message)):
            # 2026-era requests are stateless: no session, their version and routing
            # headers mirrored from the body, and the arguments a tool marked as headers.
            headers.update(modern_headers(message, modern))
            if message.get("method") == "tools/call":
                headers.update(self._params.for_call(message))
            return headers
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        method = message.get("method") if message else None
        if self.protocol_version and method != "initialize":
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def _expired(
        self, response: Response, sent_session: str | None, message: jsonrpc.Message, attempt: int
    ) -> bool:
        # 404 with a session id: toolman ended or forgot the session and did not process
        # the message, so it is safe to re-initialize and send it once more.
        return (
            response.status == 404
            and sent_session is not None
            and attempt == 1
            and message.get("method") != "initialize"
        )

    async def _accepted(self, message: jsonrpc.Message, response: Response) -> None:
        body = await response.read(1024 * 1024)
        if response.status >= 300:
            raise status_error(response, body, self._settings.url)
        if message.get("method") == "notifications/initialized":
            self._start_listener()

    async def _answer(self, message: jsonrpc.Message, response: Response) -> jsonrpc.Message:
        request_id = message["id"]
        if response.status >= 300 or response.status == 202:
            body = await response.read(1024 * 1024)
            return error_reply(response, body, request_id, self._settings.url)
        is_initialize = message.get("method") == "initialize"
        if is_initialize:
            self._capture_session(response)
        if response.content_type == "application/json":
            answer = parse_message(await response.read())
        elif response.content_type == "text/event-stream":
            answer = await self._read_stream(response, request_id)
        else:
            raise UpstreamProtocolError(
                f"toolman answered with Content-Type {response.content_type or 'none'!r}; "
                "expected application/json or text/event-stream"
            )
        if is_initialize and isinstance(answer.get("result"), dict):
            self._capture_initialize(message, answer["result"])
        if answer.get("id") is None:
            answer = {**answer, "id": request_id}
        return answer

    async def _read_stream(
        self, response: Response, request_id: jsonrpc.RequestId
    ) -> jsonrpc.Message:
        stream = EventStreamReader(self._emit)
        answer = await stream.read_until_response(response, request_id)
        resumes = 0
        while answer is None:
            # The stream ended without the answer. Only a stream that gave event ids can be
            # resumed; re-sending the request instead could run a tool twice.
            if stream.last_event_id is None or resumes >= MAX_RESUMES:
                raise ConnectionLost(
                    "toolman's event stream ended before it answered", response_started=True
                )
            resumes += 1
            await asyncio.sleep(stream.retry_seconds)
            headers = self._headers() | {"Last-Event-ID": stream.last_event_id}
            async with await self._http.request("GET", headers) as resumed:
                if resumed.status != 200 or resumed.content_type != "text/event-stream":
                    body = await resumed.read(1024 * 1024)
                    raise status_error(resumed, body, self._settings.url)
                answer = await stream.read_until_response(resumed, request_id)
        return answer

    # -- session state ----------------------------------------------------------------

    def _capture_session(self, response: Response) -> None:
        session_id = response.headers.get("mcp-session-id")
        if session_id is not None and not HEADER_SAFE.fullmatch(session_id):
            log.warning("ignoring an Mcp-Session-Id that is not visible ASCII")
            session_id = None
        self.session_id = session_id

    def _capture_initialize(self, message: jsonrpc.Message, result: jsonrpc.Message) -> None:
        version = result.get("protocolVersion")
        self.protocol_version = version if isinstance(version, str) else None
        self._init_params = message.get("params")
        info = result.get("serverInfo")
        info = info if isinstance(info, dict) else {}
        log.info(
            "session with %s %s (protocol %s)",
            info.get("name", "toolman"),
            info.get("version", ""),
            self.protocol_version,
        )

    async def _reinitialize(self, stale_session: str | None) -> None:
        async with self._reinit_lock:
            if self.session_id != stale_session:
                return  # a concurrent request already replaced the session
            if self._init_params is None:
                raise UpstreamHTTPError(
                    "toolman no longer knows this session (HTTP 404) and no initialize "
                    "was seen to start a new one",
                    status=404,
                )
            log.info("toolman forgot the session (HTTP 404): initializing a new one")
            self.session_id = None
            try:
                await self._initialize_again()
            except BaseException:
                # Keep the stale id: the next message gets its 404 again and retries this.
                self.session_id = stale_session
                raise

    async def _initialize_again(self) -> None:
        init = {
            "jsonrpc": "2.0",
            "id": f"mcp-wrapper-reinit-{next(self._reinit_ids)}",
            "method": "initialize",
            "params": self._init_params,
        }
        async with await self._post(init) as response:
            answer = await self._answer(init, response)
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise UpstreamHTTPError(
                f"toolman refused to re-initialize: {error.get('message', answer['error'])}",
                status=200,
            )
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        async with await self._post(initialized) as response:
            await self._accepted(initialized, response)
        if self._client_ready:
            await self._announce_changes(answer.get("result"))

    async def _announce_changes(self, result: object) -> None:
        """Tell the client its lists may be stale: the new session may have another config.

        ``tools/list_changed`` whenever toolman offers tools; resources and prompts only
        when toolman says it sends ``listChanged`` for them.
        """
        capabilities = result.get("capabilities") if isinstance(result, dict) else None
        if not isinstance(capabilities, dict):
            return
        for kind in ("tools", "resources", "prompts"):
            offered = capabilities.get(kind)
            if not isinstance(offered, dict):
                continue
            if kind == "tools" or offered.get("listChanged") is True:
                method = f"notifications/{kind}/list_changed"
                log.debug("<- %s (after the new session)", method)
                await self._emit({"jsonrpc": "2.0", "method": method})

    def _start_listener(self) -> None:
        if self._closing or self.session_id is None:
            return
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.create_task(
            listen(self._http, self._headers, self._emit, self._session_is, self.session_id)
        )

    def _session_is(self, session_id: str) -> bool:
        return not self._closing and self.session_id == session_id
