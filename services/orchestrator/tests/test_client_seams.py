"""The client's follow loop, exit codes and error mapping at httpx's own test seam,
`httpx.MockTransport`: the answers of a task that runs and ends, and of connections that
break, which the real orchestrator here (its engine unreachable) cannot give. The real
server is exercised in test_client_cli.py and test_client_follow.py; a task that really
runs needs the real images and is covered by the end-to-end tests."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rich.console import Console

from orchestrator.cli import build_parser
from orchestrator.client import render
from orchestrator.client.actions import follow_run
from orchestrator.client.errors import ApiError, Kind
from orchestrator.client.follow import Pacing, follow
from orchestrator.client.http import ApiClient
from orchestrator.client.request import option_for, task_body
from orchestrator.client.task import PHASES, Task
from orchestrator.tasks.model import Phase

TASK_ID = "0b7c6a52-1111-4222-8333-944455556666"
FAST = Pacing(poll_seconds=0, status_seconds=0.01, reconnect_seconds=30)


def task_json(phase: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": TASK_ID,
        "phase": phase,
        "created_at": "2026-01-02T03:04:05.000006Z",
        "spec": {"agent": {"name": "coder"}},
        "tool_calls": {"allowed": 2, "refused": 1, "failed": 0, "by_tool": {}},
        **fields,
    }


@dataclass
class Stream:
    """One answer of `GET .../logs?follow=true`: these chunks, then the task's phase moves
    to `then` (if given), then the connection breaks with `error` (if given)."""

    chunks: list[bytes]
    then: dict[str, Any] | None = None
    error: BaseException | None = None


@dataclass
class FakeApi:
    streams: list[Stream]
    kept_log: bytes = b""  # what `follow=false` answers (the log the server keeps)
    task: dict[str, Any] = field(default_factory=lambda: task_json("running"))
    down_for: int = 0  # the first requests find nothing listening
    follows: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down_for > 0:
            self.down_for -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if request.url.path.endswith("/logs"):
            if request.url.params["follow"] == "false":
                return httpx.Response(200, content=self.kept_log)
            self.follows += 1
            return httpx.Response(200, content=self._body(self.streams.pop(0)))
        return httpx.Response(200, json=self.task)

    def _body(self, stream: Stream) -> Iterator[bytes]:
        yield from stream.chunks
        if stream.then is not None:
            self.task = {**self.task, **stream.then}
        if stream.error is not None:
            raise stream.error

    def client(self) -> ApiClient:
        return ApiClient("http://orchestrator", "t", transport=httpx.MockTransport(self.handle))


def broken() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("peer closed connection without sending complete body")


@pytest.mark.parametrize(
    ("phase", "exit_code"),
    [("succeeded", 0), ("failed", 1), ("timed_out", 124), ("cancelled", 130)],
)
def test_follow_streams_the_log_and_exits_with_the_outcome(
    phase: str, exit_code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = {"phase": phase, "exit_code": 3 if phase == "failed" else None, "reason": "why"}
    fake = FakeApi([Stream([b"hello\n", b"wor", b"ld\n"], then=ended)])
    with fake.client() as api:
        code = follow_run(api, Task.parse(task_json("pending")), as_json=False, pacing=FAST)
    assert code == exit_code
    out, err = capsys.readouterr()
    assert out == "hello\nworld\n"
    assert f"task {TASK_ID}: pending" in err
    assert f"task {TASK_ID} {phase}: " in err
    assert "tool calls 2 allowed / 1 refused, why" in err
    assert ("exit code 3" in err) == (phase == "failed")


def test_a_broken_stream_resumes_where_it_broke(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeApi(
        [
            Stream([b"hello "], error=broken()),
            Stream([b"hello world\n"], then={"phase": "succeeded", "exit_code": 0}),
        ]
    )
    with fake.client() as api:
        assert follow_run(api, Task.parse(fake.task), as_json=False, pacing=FAST) == 0
    assert capsys.readouterr().out == "hello world\n"  # each byte once


def test_a_stream_that_ends_before_the_phase_does_is_followed_again() -> None:
    fake = FakeApi(
        [
            Stream([b"a\n"]),  # the container stopped; the phase is not recorded yet
            Stream([b"a\nb\n"], then={"phase": "failed", "exit_code": 2}),
        ]
    )
    sink = io.BytesIO()
    with fake.client() as api:
        ended = follow(api, TASK_ID, render.RawSink(sink), pacing=FAST)
    assert (ended.phase, ended.exit_code) == ("failed", 2)
    assert sink.getvalue() == b"a\nb\n"
    assert fake.follows == 2


def test_the_rest_of_a_broken_log_comes_from_the_kept_log() -> None:
    fake = FakeApi(
        [Stream([b"one\n"], then={"phase": "succeeded"}, error=broken())],
        kept_log=b"one\ntwo\n",
    )
    sink = io.BytesIO()
    with fake.client() as api:
        assert follow(api, TASK_ID, render.RawSink(sink), pacing=FAST).phase == "succeeded"
    assert sink.getvalue() == b"one\ntwo\n"


def test_an_orchestrator_back_after_a_restart_is_followed_on() -> None:
    fake = FakeApi([Stream([b"done\n"], then={"phase": "succeeded"})], down_for=3)
    sink = io.BytesIO()
    with fake.client() as api:
        assert follow(api, TASK_ID, render.RawSink(sink), pacing=FAST).phase == "succeeded"
    assert sink.getvalue() == b"done\n"


def test_an_orchestrator_gone_for_too_long_ends_the_follow() -> None:
    fake = FakeApi([], down_for=1_000_000)
    gone = Pacing(poll_seconds=0, status_seconds=0.01, reconnect_seconds=0)
    with fake.client() as api, pytest.raises(ApiError) as caught:
        follow(api, TASK_ID, render.RawSink(io.BytesIO()), pacing=gone)
    assert caught.value.exit_code == 3
    assert "cannot reach the orchestrator at http://orchestrator" in caught.value.message
    assert f"`orchestrator task logs {TASK_ID} -f`" in caught.value.message


def test_ctrl_c_stops_following_and_names_the_cancel_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeApi([Stream([b"partial"], error=KeyboardInterrupt())])
    with fake.client() as api:
        assert follow_run(api, Task.parse(fake.task), as_json=False, pacing=FAST) == 130
    out, err = capsys.readouterr()
    assert out == "partial"
    assert f"Cancel it with `orchestrator task cancel {TASK_ID}`" in err


def test_with_json_stdout_is_only_the_ended_task(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeApi([Stream([b"log line\n"], then={"phase": "succeeded", "exit_code": 0})])
    with fake.client() as api:
        assert follow_run(api, Task.parse(fake.task), as_json=True, pacing=FAST) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["phase"] == "succeeded"
    assert "log line\n" in err


def refusal(status: int, body: object, token: str | None = "t") -> ApiError:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    client = ApiClient("http://o", token, transport=httpx.MockTransport(handle))
    with client, pytest.raises(ApiError) as caught:
        client.get(TASK_ID)
    return caught.value


def test_a_422_names_each_field_as_people_write_it() -> None:
    error = refusal(
        422,
        {
            "detail": [
                {"loc": ["body", "tools", "servers", 0], "msg": "unknown server 'x'"},
                {"loc": ["body", "env", "1x", "[key]"], "msg": "String should match"},
                {"loc": ["body", "resources", "memory"], "msg": "Value error, must be 6Mi"},
                {"loc": ["query", "label", 2], "msg": "'a' is not key=value"},
            ]
        },
    )
    assert (error.kind, error.exit_code) == (Kind.INVALID, 2)
    assert [(f.path, f.message, option_for(f.location)) for f in error.fields] == [
        ("tools.servers[0]", "unknown server 'x'", "--policy"),
        ("env['1x'] (the key)", "String should match", "--env"),
        ("resources.memory", "must be 6Mi", "--memory"),
        ("label[2]", "'a' is not key=value", "--label"),
    ]


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "words"),
    [
        (401, {"detail": "the token is not known"}, 3, "refused the token from ORCHESTRATOR_TOKEN"),
        (404, {"detail": "no task 'x'"}, 4, "no task 'x'"),
        (409, {"detail": "task x has already ended"}, 5, "task x has already ended"),
        (413, {"detail": "the request body is larger"}, 2, "the request body is larger"),
        (500, {"detail": "Internal Server Error"}, 3, "answered 500: Internal Server Error"),
        (200, {"id": 1}, 3, "does not understand"),
    ],
)
def test_refusals_map_to_one_line_and_an_exit_code(
    status: int, body: object, exit_code: int, words: str
) -> None:
    error = refusal(status, body)
    assert error.exit_code == exit_code
    assert words in error.message
    assert "\n" not in error.message


def test_no_token_says_which_variable_to_set() -> None:
    error = refusal(401, {"detail": "send `Authorization: Bearer <token>`"}, token=None)
    assert "wants a token: set ORCHESTRATOR_TOKEN" in error.message


def test_the_phases_are_the_apis() -> None:
    assert tuple(phase.value for phase in Phase) == PHASES


def test_console_sink_prints_whole_lines_and_the_rest_at_close() -> None:
    out = io.StringIO()
    sink = render.ConsoleSink(Console(file=out, width=200))
    sink.write("héllo\nwor".encode())
    sink.write(b"ld\npart")
    assert out.getvalue() == "héllo\nworld\n"
    sink.close()
    assert out.getvalue() == "héllo\nworld\npart\n"


def test_the_table_shows_ages_durations_and_truncated_reasons() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    task = Task.parse(
        task_json(
            "failed",
            exit_code=7,
            started_at=(created + timedelta(seconds=5)).isoformat(),
            finished_at=(created + timedelta(minutes=3, seconds=10)).isoformat(),
            reason="the agent exited with 7 " + "and a long story " * 10,
        )
    )
    out = io.StringIO()
    Console(file=out, width=300).print(
        render.task_table([task], now=created + timedelta(hours=2, seconds=1))
    )
    row = out.getvalue().splitlines()[1]
    assert row.split()[:7] == [TASK_ID, "failed", "coder", "2h00m", "3m05s", "7", "2/1"]
    assert row.rstrip().endswith("…")


def test_run_waits_for_an_orchestrator_that_is_just_starting() -> None:
    """The README's two commands pasted at once: the first POSTs find nothing listening
    (the request never reached a server, so trying again cannot make two tasks)."""
    api = FakeApi(streams=[], task=task_json("pending"), down_for=3)
    with api.client() as client:
        created = client.create({"prompt": "p"}, patience=30)
    assert created.id == TASK_ID
    assert api.down_for == 0


def test_run_gives_up_on_an_orchestrator_that_never_answers() -> None:
    api = FakeApi(streams=[], task=task_json("pending"), down_for=1_000)
    with api.client() as client, pytest.raises(ApiError) as refused:
        client.create({"prompt": "p"}, patience=0)
    assert refused.value.kind is Kind.UNREACHABLE
    assert api.down_for == 999  # tried once


def test_repo_credentials_are_a_reference_in_the_request() -> None:
    repo = ["--repo", "https://git.example/r", "--repo-credentials", "env:GIT_TOKEN"]
    args = build_parser().parse_args(["task", "run", "--prompt", "p", *repo])
    body = task_body(args)
    assert body["repository"] == {
        "url": "https://git.example/r",
        "credentials": {"env": "GIT_TOKEN"},
    }
    assert option_for(["repository", "credentials", "env"]) == "--repo-credentials"
