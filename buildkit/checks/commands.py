"""The commands of the checks that are plain commands, shared by `nox -s lint`/`fmt` and
`nox -s ci` so that both run exactly the same thing. Standard library only: the noxfile
imports it before anything is installed."""

from __future__ import annotations

from pathlib import Path

CHECKED = ("buildkit", "tests", "noxfile.py", "bench")
WORKFLOWS = ".github/workflows"

Argv = tuple[str, ...]


def relative(root: Path, paths: list[Path]) -> tuple[str, ...]:
    return tuple(sorted(str(path.relative_to(root)) for path in paths))


def python_format() -> Argv:
    return ("ruff", "format", "--check", *CHECKED)


def python_lint() -> tuple[Argv, ...]:
    return (("ruff", "check", *CHECKED), ("mypy", *CHECKED))


def workflow_lint(root: Path) -> tuple[Argv, ...]:
    """actionlint, and zizmor --offline: its online audits ask GitHub's API, which a
    machine without GitHub cannot answer, so lint stays offline-safe."""
    workflows = relative(root, list((root / WORKFLOWS).glob("*.yml")))
    return (("actionlint", *workflows), ("zizmor", "--offline", "--no-progress", WORKFLOWS))


def script_lint(root: Path) -> Argv:
    scripts = relative(root, [*(root / "ci").glob("*.sh"), root / ".ci" / "run"])
    return ("shellcheck", "--external-sources", *scripts)


def dockerfile_lint(root: Path) -> Argv:
    return ("hadolint", *relative(root, list((root / "dockerfiles").glob("*.Dockerfile"))))


def non_python_lint(root: Path) -> tuple[Argv, ...]:
    return (*workflow_lint(root), script_lint(root), dockerfile_lint(root))
