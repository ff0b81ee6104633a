"""The checks of `nox -s ci`, in the order they run. Each is a name and a function of the
runner that returns its outcome; a check never raises, so every check runs whatever the
ones before it did, and the table at the end has a row for each."""

from __future__ import annotations

import platform
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from buildkit.checks import audit, commands, locks
from buildkit.config import Project
from buildkit.errors import BuildkitError
from buildkit.gitinfo import source_files
from buildkit.proc import Runner


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str
    informational: bool = False  # a count or a note: shown, never failing


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Runner], Outcome]


def buildkit(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "buildkit", *args)


def shown(argv: Sequence[str]) -> str:
    """A command as the table names it: `python -m buildkit test`, `ruff check`."""
    words = ["python" if word == sys.executable else word for word in argv]
    return " ".join(words[:4] if words[:3] == ["python", "-m", "buildkit"] else words[:2])


def commands_check(name: str, argvs: Sequence[Sequence[str] | Command]) -> Check:
    """Every command runs; the check fails if any failed, naming those."""
    todo = [a if isinstance(a, Command) else Command(tuple(a)) for a in argvs]

    def run(runner: Runner) -> Outcome:
        failed = [
            shown(command.argv)
            for command in todo
            if not runner.call(command.argv, env=command.env).ok
        ]
        if failed:
            return Outcome(False, "failed: " + "; ".join(failed))
        return Outcome(True, f"{len(todo)} commands clean" if len(todo) > 1 else "clean")

    return Check(name, run)


def audit_check(root: Path, service: str) -> Check:
    """pip-audit of locks/<service>.txt: the exact versions the service's image installs
    besides this repository's own wheels (buildkit.checks.audit)."""

    def run(runner: Runner) -> Outcome:
        lock = locks.lock_path(root, service)
        if not lock.is_file():
            return Outcome(False, f"{locks.LOCKS}/{lock.name} is missing: run `{locks.FIX}`")
        try:
            ignored = audit.read_ignored(root / audit.IGNORE_FILE)
            with tempfile.TemporaryDirectory() as scratch:
                report = Path(scratch) / "audit.json"
                runner.call(audit.command(lock, report))
                if not report.is_file():
                    return Outcome(False, "pip-audit wrote no report (is PyPI reachable?)")
                verdict = audit.judge(report.read_text(), ignored)
        except BuildkitError as exc:
            return Outcome(False, exc.message)
        return Outcome(verdict.ok, f"{locks.LOCKS}/{lock.name}: {verdict.summary()}")

    return Check(f"pip-audit {service}", run)


MARKER = re.compile(r"\b(TODO|FIXME)\b")


def todo_check(root: Path) -> Check:
    """How many TODO/FIXME markers the repository's files hold (a count, not a failure)."""

    def run(_runner: Runner) -> Outcome:
        counts = {"TODO": 0, "FIXME": 0}
        for path in source_files(root, root):
            if path.suffix not in {".py", ".sh", ".toml", ".yml", ".yaml", ".md", ".Dockerfile"}:
                continue
            for match in MARKER.finditer(path.read_text(encoding="utf-8", errors="replace")):
                counts[match.group(1)] += 1
        return Outcome(True, f"{counts['TODO']} TODO, {counts['FIXME']} FIXME", informational=True)

    return Check("TODO/FIXME", run)


def lock_files_check(project: Project) -> Check:
    """locks/<service>.txt exist and a recompile (existing pins preferred) changes nothing."""

    def run(runner: Runner) -> Outcome:
        verdict = locks.check(runner, project)
        return Outcome(verdict.ok, verdict.summary)

    return Check("lock files", run)


def native_platform() -> str:
    return "linux/arm64" if platform.machine() in ("aarch64", "arm64") else "linux/amd64"


def plan(project: Project, pytest_args: Sequence[str] = ()) -> tuple[Check, ...]:
    root = project.root
    report = str(root / "build")
    return (
        commands_check(
            "format",
            [
                commands.python_format(),
                buildkit("fmt", "--keep-going", "--report", f"{report}/report-fmt.json"),
            ],
        ),
        commands_check(
            "lint: Python",
            [
                *commands.python_lint(),
                buildkit("lint", "--keep-going", "--report", f"{report}/report-lint.json"),
            ],
        ),
        commands_check("lint: workflows", commands.workflow_lint(root)),
        commands_check("lint: scripts", [commands.script_lint(root)]),
        commands_check("lint: Dockerfiles", [commands.dockerfile_lint(root)]),
        commands_check("wheels", [buildkit("wheel", "--report", f"{report}/report-wheel.json")]),
        commands_check(
            "tests",
            [
                buildkit("test", "--keep-going", "--report", f"{report}/report-tests.json"),
                buildkit("wheelhouse", "--report", f"{report}/report-wheelhouse.json"),
                buildkit(
                    "wheelhouse",
                    "--claude-image",
                    "--services",
                    "mcp_wrapper",
                    "--platform",
                    native_platform(),
                    "--report",
                    f"{report}/report-claude-code.json",
                ),
                Command((sys.executable, "-m", "pytest", *pytest_args), {"BUILDKIT_OFFLINE": "1"}),
            ],
        ),
        lock_files_check(project),
        *(audit_check(root, name) for name in project.service_names),
        todo_check(root),
    )
