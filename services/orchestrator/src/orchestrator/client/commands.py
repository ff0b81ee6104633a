"""`orchestrator task run|list|get|logs|cancel`: the options, and the one place the client
prints an error and picks the exit code. The commands themselves are in actions.py,
imported only when one runs, so `orchestrator --help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from orchestrator.client.request import (
    credentials,
    pair,
    positive_float,
    positive_int,
    secret,
)
from orchestrator.client.task import PHASES

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "ORCHESTRATOR_URL"
TOKEN_ENV = "ORCHESTRATOR_TOKEN"  # noqa: S105 - the variable's name, not a token
INTERRUPTED = 130

EPILOG = f"""\
exit codes:
  0    done; for `run --follow`: the task succeeded
  1    `run --follow`: the task failed (the agent exited non-zero)
  2    bad usage, or the orchestrator refused the request (each field is named)
  3    the orchestrator cannot be used: unreachable, the token refused, a server error
  4    no task has this id
  5    conflict: the idempotency key was used for another request, or the task has ended
  124  `run --follow`: the task timed out
  130  `run --follow`: the task was cancelled, or Ctrl-C stopped following (the task goes
       on: `orchestrator task cancel ID` cancels it)

environment:
  {URL_ENV}    the API's address (default {DEFAULT_URL}); --url overrides
  {TOKEN_ENV}  the API's bearer token; --token overrides
"""
FORMAT = argparse.RawDescriptionHelpFormatter


def add_task_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection)
    task = commands.add_parser(
        "task",
        help="submit, follow, list and cancel tasks through the API",
        description="The task API for people: submit a task, follow its log, list, cancel.",
        epilog=EPILOG,
        formatter_class=FORMAT,
    )
    _connection_options(task)
    sub = task.add_subparsers(dest="task_command", metavar="COMMAND", required=True)
    parents = [connection]

    run = sub.add_parser(
        "run",
        parents=parents,
        help="submit a task; with -f follow its log and exit with its outcome",
        description="Submit a task and print its id; with --follow, stream the agent's log "
        "to stdout and exit with the task's outcome.",
        epilog=EPILOG,
        formatter_class=FORMAT,
    )
    prompt = run.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", metavar="TEXT", help="what the agent is asked to do")
    prompt.add_argument("--prompt-file", metavar="FILE", help="the prompt from a file (- stdin)")
    run.add_argument("--repo", metavar="URL", help="a git repository cloned into the workspace")
    ref = run.add_mutually_exclusive_group()
    ref.add_argument("--branch", metavar="B", help="the branch of --repo to check out")
    ref.add_argument("--commit", metavar="SHA", help="the commit of --repo to check out")
    run.add_argument(
        "--repo-credentials",
        type=credentials,
        metavar="env:VAR|file:PATH",
        help="the token for an http(s) --repo: a variable or file of the orchestrator's "
        "(allowed by its task_secrets), never the token itself",
    )
    run.add_argument(
        "--policy",
        metavar="FILE",
        help='the tool policy: a JSON file like {"servers": ["time"], '
        '"allowed_tools": ["time_*"], "blocked_tools": []}',
    )
    run.add_argument(
        "--file",
        action="append",
        metavar="LOCAL[:PATH]",
        help="a local file placed in the workspace (at PATH, default its name); repeatable",
    )
    run.add_argument("--agent", metavar="NAME", help="the agent's name (default `agent`)")
    run.add_argument("--model", metavar="M", help="the model the agent uses")
    run.add_argument(
        "--env", action="append", type=pair, metavar="K=V", help="an environment variable"
    )
    run.add_argument(
        "--secret",
        action="append",
        type=secret,
        metavar="NAME=env:VAR|NAME=file:PATH",
        help="NAME set from a variable or file of the orchestrator's (never a value)",
    )
    run.add_argument("--timeout", type=positive_int, metavar="SECONDS", help="the time limit")
    run.add_argument("--cpu", type=positive_float, metavar="N", help="CPUs (e.g. 1.5)")
    run.add_argument("--memory", metavar="QUANTITY", help="memory limit (e.g. 2Gi, 512Mi)")
    run.add_argument("--label", action="append", type=pair, metavar="K=V", help="a label")
    run.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key and request give the same task (safe to retry)",
    )
    run.add_argument(
        "-f", "--follow", action="store_true", help="stream the log, exit with the outcome"
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the task as JSON (with -f: the ended task, the log going to stderr)",
    )

    listing = sub.add_parser(
        "list", parents=parents, help="list tasks", description="List tasks, newest first."
    )
    listing.add_argument("--oldest-first", action="store_true", help="in submission order instead")
    listing.add_argument("--phase", action="append", choices=PHASES, help="only this phase")
    listing.add_argument("--label", action="append", type=pair, metavar="K=V", help="a label")
    listing.add_argument("--limit", type=positive_int, default=50, help="tasks per page (50)")
    listing.add_argument("--all", action="store_true", help="every page, not only the first")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")

    get = sub.add_parser("get", parents=parents, help="show one task")
    get.add_argument("id", metavar="ID")
    get.add_argument("--json", action="store_true", help="print the API's JSON")

    logs = sub.add_parser("logs", parents=parents, help="print a task's log")
    logs.add_argument("id", metavar="ID")
    logs.add_argument("--stream", choices=("agent", "toolman"), default="agent")
    logs.add_argument("-f", "--follow", action="store_true", help="until the task ends")

    cancel = sub.add_parser("cancel", parents=parents, help="cancel a task")
    cancel.add_argument("id", metavar="ID")
    cancel.add_argument("--json", action="store_true", help="print the API's JSON")

    for parser in (run, listing, get, logs, cancel):
        parser.set_defaults(task_parser=parser)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"the API (${URL_ENV}, default {DEFAULT_URL})"
    )
    parser.add_argument("--token", default=argparse.SUPPRESS, help=f"the API token (${TOKEN_ENV})")


def run_task_command(args: argparse.Namespace) -> int:
    from orchestrator.client.actions import ACTIONS, Connection
    from orchestrator.client.errors import ApiError
    from orchestrator.client.request import UsageError, option_for

    parser: argparse.ArgumentParser = args.task_parser
    try:
        connection = Connection(url=_url(args, parser), token=_token(args))
        return ACTIONS[args.task_command](args, connection)
    except UsageError as exc:
        parser.error(str(exc))
    except ApiError as exc:
        for field in exc.fields:
            hint = option_for(field.location)
            line = f"{field.path}: {field.message}" + (f" ({hint})" if hint else "")
            print(f"orchestrator: error: {line}", file=sys.stderr)
        if not exc.fields:
            print(f"orchestrator: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # A reader such as `head` went away: no more output, no traceback on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _url(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    given = getattr(args, "url", None)
    url = given or os.environ.get(URL_ENV) or DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "--url" if given else URL_ENV
        parser.error(f"{source} {url!r} is not an http:// or https:// address")
    return url


def _token(args: argparse.Namespace) -> tuple[str | None, str]:
    given = getattr(args, "token", None)
    if given:
        return given, "--token"
    return os.environ.get(TOKEN_ENV) or None, TOKEN_ENV
