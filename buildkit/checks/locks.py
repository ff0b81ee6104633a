"""Lock files: `locks/<service>.txt`, what each service's image installs besides this
repository's own wheels, pinned exactly, one universal resolution (both pushed platforms,
Python 3.11), made by `uv pip compile` from the service's `pyproject.toml` and those of the
services it requires (those services themselves excluded: they come from here, never
from an index).

`python -m buildkit.checks.locks` (`nox -s lock`) writes them; `nox -s ci` recompiles
each into a scratch copy, the existing pins preferred, and fails if anything changes,
naming that command. Both need PyPI (uv's resolver); nothing else in the tests does."""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from buildkit.config import Project, load_project
from buildkit.deps.envs import uv_binary
from buildkit.proc import Runner

LOCKS = "locks"
FIX = "nox -s lock"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    summary: str


def lock_path(root: Path, service: str) -> Path:
    return root / LOCKS / f"{service}.txt"


def installed_lock(root: Path, service: str) -> Path | None:
    """The service's lock file, if the project has one: its image's dependencies are
    fetched and installed at the versions it pins (buildkit.deps.wheelhouse)."""
    lock = lock_path(root, service)
    return lock if lock.is_file() else None


def compile_argv(project: Project, service: str, output: Path, excludes: Path) -> list[str]:
    """`uv pip compile` of the service's requirements into `output`, run from the root."""
    sources = [project.target(name).path for name in (*project.siblings_of(service), service)]
    return [
        uv_binary(), "pip", "compile", "--quiet", "--universal", "--python-version", "3.11",
        "--no-annotate", "--custom-compile-command", FIX, "--excludes", str(excludes),
        *(str(path.relative_to(project.root) / "pyproject.toml") for path in sources),
        "-o", str(output),
    ]  # fmt: skip


def compile_lock(runner: Runner, project: Project, service: str, output: Path) -> str:
    """Compile into `output` (its pins preferred when it exists); "" or the error's tail."""
    with tempfile.TemporaryDirectory() as scratch:
        excludes = Path(scratch) / "excludes.txt"
        excludes.write_text(
            "".join(
                project.target(name).distribution + "\n" for name in project.siblings_of(service)
            )
        )
        result = runner.call(compile_argv(project, service, output, excludes), cwd=project.root)
    return "" if result.ok else result.tail(3)


def check(runner: Runner, project: Project) -> Verdict:
    """Every service's lock file exists and a recompile changes nothing."""
    stale = []
    for service in project.service_names:
        kept = lock_path(project.root, service)
        if not kept.is_file():
            stale.append(f"{kept.relative_to(project.root)} is missing")
            continue
        with tempfile.TemporaryDirectory() as scratch:
            fresh = Path(scratch) / kept.name
            shutil.copyfile(kept, fresh)
            error = compile_lock(runner, project, service, fresh)
            if error:
                return Verdict(False, f"uv pip compile failed for {service}: {error}")
            if fresh.read_text() != kept.read_text():
                stale.append(f"{kept.relative_to(project.root)} is out of date")
    if stale:
        return Verdict(False, "; ".join(stale) + f": run `{FIX}`")
    return Verdict(True, f"{len(project.service_names)} up to date ({LOCKS}/)")


def main() -> int:
    """Write every service's lock file."""
    project = load_project(Path.cwd())
    runner = Runner()
    for service in project.service_names:
        path = lock_path(project.root, service)
        path.parent.mkdir(exist_ok=True)
        error = compile_lock(runner, project, service, path)
        if error:
            print(f"uv pip compile failed for {service}: {error}", file=sys.stderr)
            return 1
        print(path.relative_to(project.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
