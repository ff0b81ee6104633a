"""The five task commands. Each returns its exit code; errors leave as `ApiError` or
`UsageError` for commands.py to print. stdout carries what a script reads (the id, the
log, the table, JSON); stderr what a person watches (the status line, the outcome)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.client import render
from orchestrator.client.follow import Offset, Pacing, copy_log, follow
from orchestrator.client.http import ApiClient
from orchestrator.client.request import task_body
from orchestrator.client.task import OUTCOME_EXIT_CODES, Task


@dataclass(frozen=True)
class Connection:
    url: str
    token: tuple[str | None, str]  # the token and where it came from

    def client(self) -> ApiClient:
        token, source = self.token
        return ApiClient(self.url, token, token_source=source)


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def run(args: argparse.Namespace, connection: Connection) -> int:
    body = task_body(args)  # local files are read before anything is sent
    with connection.client() as api:
        task = api.create(body, args.idempotency_key)
        if not args.follow:
            if args.json:
                print_json(task.raw)
            else:
                print(task.id)
            return 0
        return follow_run(api, task, as_json=args.json)


def follow_run(api: ApiClient, task: Task, *, as_json: bool, pacing: Pacing = Pacing()) -> int:  # noqa: B008
    """Stream the log while the status line shows the phase; exit with the outcome."""
    log = sys.stderr if as_json else sys.stdout  # with --json, stdout is one JSON document
    console = render.stderr_console()
    live = console.is_terminal
    sink: render.ConsoleSink | render.RawSink = (
        render.ConsoleSink(console)
        if live and render.same_terminal(log, sys.stderr)
        else render.RawSink(log.buffer)
    )
    status: render.LiveStatus | render.PlainStatus = (
        render.LiveStatus(console, task) if live else render.PlainStatus(sys.stderr)
    )
    try:  # from the first line on: a Ctrl-C always says how to cancel
        print(
            f"task {task.id} created; following its log (Ctrl-C stops following)",
            file=sys.stderr,
        )
        status.show(task)
        with status:
            final = follow(api, task.id, sink, status=status, pacing=pacing)
    except KeyboardInterrupt:
        sink.close()
        print(
            f"stopped following task {task.id}; it goes on. "
            f"Cancel it with `orchestrator task cancel {task.id}`",
            file=sys.stderr,
        )
        return OUTCOME_EXIT_CODES["cancelled"]
    sink.close()
    print(render.outcome(final), file=sys.stderr)
    if as_json:
        print_json(final.raw)
    return OUTCOME_EXIT_CODES.get(final.phase, 1)


def list_tasks(args: argparse.Namespace, connection: Connection) -> int:
    labels = [f"{key}={value}" for key, value in args.label or ()]
    tasks: list[Task] = []
    cursor: str | None = None
    with connection.client() as api:
        while True:
            page = api.list(
                phases=args.phase or (),
                labels=labels,
                limit=args.limit,
                cursor=cursor,
                newest_first=not args.oldest_first,
            )
            tasks.extend(page.items)
            cursor = page.next_cursor
            if not (args.all and cursor):
                break
    if args.json:
        print_json({"items": [task.raw for task in tasks], "next_cursor": cursor})
        return 0
    if not tasks:
        print("no tasks", file=sys.stderr)
        return 0
    render.stdout_console().print(render.task_table(tasks))
    if cursor:
        print(f"more tasks than --limit {args.limit}: --all lists every one", file=sys.stderr)
    return 0


def get(args: argparse.Namespace, connection: Connection) -> int:
    with connection.client() as api:
        task = api.get(args.id)
    if args.json:
        print_json(task.raw)
    else:
        render.stdout_console().print(render.details(task))
    return 0


def logs(args: argparse.Namespace, connection: Connection) -> int:
    sink = render.RawSink(sys.stdout.buffer)
    with connection.client() as api:
        if args.follow:
            follow(api, args.id, sink, stream=args.stream)
        else:
            copy_log(api, args.id, args.stream, sink, Offset(), follow=False)
    return 0


def cancel(args: argparse.Namespace, connection: Connection) -> int:
    with connection.client() as api:
        task = api.cancel(args.id)
    if args.json:
        print_json(task.raw)
    elif task.finished:
        print(render.outcome(task))
    else:
        print(f"task {task.id}: cancelling ({task.phase}); its containers are being stopped")
    return 0


ACTIONS: Mapping[str, Callable[[argparse.Namespace, Connection], int]] = {
    "run": run,
    "list": list_tasks,
    "get": get,
    "logs": logs,
    "cancel": cancel,
}
