"""The clone of a task's repository, run as a child process of its own.

    python -P -m orchestrator.backends.clone [--branch=B | --commit=C] -- URL DEST

The orchestrator (workspace.clone) starts it in its own process group and kills the
group on a cancel, a deadline or a destination grown too large: a clone in a thread
could be none of these. It clones with dulwich (pure-Python git: the orchestrator image
has no git binary, and dulwich runs no hooks). Credentials, if any, come on stdin as
`{"username": ..., "password": ...}` — never in argv, which `ps` shows everyone — and
stdin is read to its end first, so the parent only has to write and close it.

On failure it writes one line on stderr, `error: ` and what a person needs (the parent
puts it in the task's reason after `cloning URL failed: `), and exits with one of the
codes below.

A commit is looked up among commits only (dulwich's `scan_for_short_id` walks the pack
index's sorted names under the prefix, not every object) and checked out on a detached
HEAD, as `git checkout <sha>` does: the repository's branches stay as the server has
them, so `git diff main` or `git log origin/main..` in the workspace mean what they
say, and the agent's own commits sit on HEAD until it names a branch for them.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dulwich.repo import Repo

OK = 0
FAILED = 1  # anything not below; the line says what
USAGE = 2  # argparse's own
NO_BRANCH = 3
NO_COMMIT = 4
AUTH_REFUSED = 5
UNREACHABLE = 6
NOT_A_REPOSITORY = 7

LINE_CHARS = 300
REDACT_CHARS = 4  # a password this long is never shown (a shorter one would garble words)
PREFIX = "error: "  # the line the parent looks for (a warning may be printed after it)
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EHOSTDOWN,
}


class Failure(Exception):
    """A failure this module recognised: its exit code and its line."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code
        self.line = line


Credentials = tuple[str, str]


def fetch(
    url: str,
    dest: Path,
    *,
    branch: str | None = None,
    commit: str | None = None,
    credentials: Credentials | None = None,
) -> None:
    """Clone `url` into `dest` (which must not exist) and check out the branch or commit."""
    from dulwich import porcelain

    try:
        with open(os.devnull, "wb") as quiet:
            start = functools.partial(
                porcelain.clone, url, str(dest), branch=branch, checkout=commit is None
            )
            if credentials is None:
                repo = start(errstream=quiet)
            else:
                repo = start(errstream=quiet, username=credentials[0], password=credentials[1])
    except ValueError as exc:
        # dulwich fetches every ref, then finds no refs/heads/B or refs/tags/B:
        # "b'nope' is not a valid branch or tag".
        if branch is not None and branch in str(exc):
            raise Failure(NO_BRANCH, f"branch {branch!r} does not exist in {url}") from exc
        raise
    with repo:
        if commit is not None:
            _detach_at(repo, commit, url)


def _detach_at(repo: Repo, commit: str, url: str) -> None:
    from dulwich import porcelain
    from dulwich.objects import Commit
    from dulwich.objectspec import AmbiguousShortId, scan_for_short_id

    try:
        found = scan_for_short_id(repo.object_store, commit.encode("ascii"), Commit)
    except AmbiguousShortId:
        raise Failure(
            NO_COMMIT, f"commit {commit} is ambiguous in {url}; give more of its digits"
        ) from None
    except KeyError:
        raise Failure(
            NO_COMMIT, f"commit {commit} does not exist in {url} (no branch or tag reaches it)"
        ) from None
    porcelain.update_head(repo, found.id, detached=True)
    repo.get_worktree().reset_index(config=repo.get_config_stack())


def explain(exc: BaseException, credentials: Credentials | None) -> Failure:
    """The exit code and line of an error dulwich (or the network) raised."""
    from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized
    from dulwich.errors import GitProtocolError, NotGitRepository

    if isinstance(exc, Failure):
        return exc
    text, unreachable = first_line(exc), _network_error(exc)
    if isinstance(exc, HTTPProxyUnauthorized):
        code, line = AUTH_REFUSED, "the HTTP proxy refused the request (407)"
    elif isinstance(exc, HTTPUnauthorized) and credentials is None:
        code, line = AUTH_REFUSED, "the server asks for credentials (401) and none were given"
    elif isinstance(exc, HTTPUnauthorized):
        code, line = AUTH_REFUSED, "the server refused the credentials (401)"
    elif unreachable is not None:
        code, line = UNREACHABLE, f"cannot reach the server: {unreachable}"
    elif isinstance(exc, NotGitRepository) or (
        isinstance(exc, GitProtocolError) and "repository not exported" in text
    ):
        code, line = NOT_A_REPOSITORY, f"no git repository there ({text})"
    else:
        code, line = FAILED, text
    return Failure(code, line)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it was raised from, and what urllib3 wrapped (`reason`), in order."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(inner, BaseException):
                pending.append(inner)


def _network_error(exc: BaseException) -> str | None:
    """Why the server could not be reached, if that is what `exc` (or its cause) says."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"its name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, ConnectionError | TimeoutError | socket.herror) or (
            isinstance(cause, OSError) and cause.errno in _NETWORK_ERRNOS
        ):
            return cause.strerror or first_line(cause)
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:LINE_CHARS]


def read_credentials(data: bytes) -> Credentials | None:
    if not data.strip():
        return None
    given = json.loads(data)
    return str(given["username"]), str(given["password"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.backends.clone")
    parser.add_argument("url")
    parser.add_argument("dest", type=Path)
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--branch")
    ref.add_argument("--commit")
    args = parser.parse_args(argv)
    credentials = read_credentials(sys.stdin.buffer.read())
    try:
        fetch(args.url, args.dest, branch=args.branch, commit=args.commit, credentials=credentials)
    except Exception as exc:  # every failure becomes one line and a code
        failure = explain(exc, credentials)
        line = failure.line.replace("\n", " ")
        if credentials is not None and len(credentials[1]) >= REDACT_CHARS:
            line = line.replace(credentials[1], "***")
        sys.stderr.write(f"{PREFIX}{line}\n")
        return failure.code
    return OK


if __name__ == "__main__":
    sys.exit(main())
