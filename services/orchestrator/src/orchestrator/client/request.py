"""The body of `POST /api/v1/tasks` from `orchestrator task run`'s options.

Only what is local is checked here: files that cannot be read, `K=V` without `=`, a
policy file that is not a JSON object. Everything else the server checks, and its 422
names the field (`OPTIONS` maps a body field back to the option that set it).

`--file` contents travel as UTF-8 text when they are, as base64 otherwise; a file
executable by its owner stays executable in the workspace.
"""

from __future__ import annotations

import argparse
import base64
import json
import stat
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

# A field of the body or query (the longest dotted prefix wins) -> the option behind it.
OPTIONS = {
    "prompt": "--prompt/--prompt-file",
    "files": "--file",
    "repository": "--repo",
    "repository.branch": "--branch",
    "repository.commit": "--commit",
    "repository.credentials": "--repo-credentials",
    "agent.name": "--agent",
    "agent.model": "--model",
    "tools": "--policy",
    "env": "--env",
    "secrets": "--secret",
    "timeout_seconds": "--timeout",
    "resources.cpu": "--cpu",
    "resources.memory": "--memory",
    "labels": "--label",
    "label": "--label",
    "phase": "--phase",
    "limit": "--limit",
    "idempotency-key": "--idempotency-key",
}


class UsageError(ValueError):
    """A local argument cannot be used; the message names the option."""


# -- argparse `type=` checks: the shape of one value ---------------------------------------


def pair(text: str) -> tuple[str, str]:
    """`K=V` (the value may hold more `=`)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def secret(text: str) -> tuple[str, dict[str, str]]:
    """`NAME=env:VAR` or `NAME=file:PATH`: a reference to one of the orchestrator's."""
    name, ref = pair(text)
    kind, sep, target = ref.partition(":")
    if not sep or kind not in ("env", "file") or not target:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=env:VARIABLE or NAME=file:PATH "
            "(a variable or file of the orchestrator's, not a value)"
        )
    return name, {kind: target}


def credentials(text: str) -> dict[str, str]:
    """`env:VAR` or `file:PATH`: the orchestrator's variable or file holding the token."""
    _, ref = secret(f"token={text}")
    return ref


def positive_int(text: str) -> int:
    return int(_positive(text, int, "a whole number"))


def positive_float(text: str) -> float:
    return _positive(text, float, "a number")


def _positive(text: str, convert: type[int] | type[float], what: str) -> float:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not more than 0")
    return value


# -- reading what the options point at -----------------------------------------------------


def task_body(args: argparse.Namespace) -> dict[str, Any]:
    """The request; `UsageError` when a local file or value cannot be used."""
    body: dict[str, Any] = {"prompt": prompt(args.prompt, args.prompt_file)}
    parts: dict[str, Any] = {
        "files": [workspace_file(spec) for spec in args.file or ()],
        "repository": repository(args.repo, args.branch, args.commit, args.repo_credentials),
        "agent": _present({"name": args.agent, "model": args.model}),
        "tools": policy(args.policy) if args.policy else None,
        "env": dict(args.env or ()),
        "secrets": dict(args.secret or ()),
        "timeout_seconds": args.timeout,
        "resources": _present({"cpu": args.cpu, "memory": args.memory}),
        "labels": dict(args.label or ()),
    }
    body.update({key: value for key, value in parts.items() if value not in (None, [], {})})
    return body


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def repository(
    url: str | None,
    branch: str | None,
    commit: str | None,
    credentials: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    if not url:
        if branch or commit or credentials:
            raise UsageError("--branch, --commit and --repo-credentials need --repo")
        return None
    return {"url": url} | _present({"branch": branch, "commit": commit, "credentials": credentials})


def prompt(text: str | None, file: str | None) -> str:
    if text is not None:
        return text
    if file == "-":
        return sys.stdin.read()
    if file is None:
        raise UsageError("give the prompt with --prompt TEXT or --prompt-file FILE")
    try:
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--prompt-file {file}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"--prompt-file {file}: {exc.strerror or exc}") from None


def workspace_file(spec: str) -> dict[str, Any]:
    """`LOCAL[:WORKSPACE_PATH]`; the workspace path defaults to the file's name."""
    local, _, target = spec.partition(":")
    source = Path(local)
    try:
        mode = source.stat().st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"--file {spec}: {local} is a directory; give its files one by one")
        data = source.read_bytes()
    except OSError as exc:
        raise UsageError(f"--file {spec}: {exc.strerror or exc}") from None
    path = target or source.name
    if PurePosixPath(path).is_absolute():
        raise UsageError(f"--file {spec}: the workspace path must be relative")
    entry: dict[str, Any] = {"path": path}
    try:
        entry["content"] = data.decode("utf-8")
    except UnicodeDecodeError:
        entry["content"] = base64.b64encode(data).decode("ascii")
        entry["encoding"] = "base64"
    if mode & stat.S_IXUSR:
        entry["executable"] = True
    return entry


def policy(file: str) -> dict[str, Any]:
    """The task's `tools` object: `{"servers": [...], "allowed_tools": [...], ...}`."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"--policy {file}: {reason or exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--policy {file}: not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"--policy {file}: must be a JSON object like "
            '{"servers": ["time"], "allowed_tools": ["time_*"]}'
        )
    return value


def option_for(location: Sequence[str | int]) -> str | None:
    """The option behind a field of a 422 (`("resources", "memory")` -> `--memory`)."""
    names = [str(part) for part in location]
    for end in range(len(names), 0, -1):
        found = OPTIONS.get(".".join(names[:end]))
        if found:
            return found
    return None
