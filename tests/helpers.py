"""Shared helpers for buildkit's tests: real git repositories, the CLI as a subprocess,
and a skip that turns into a failure in CI (BUILDKIT_REQUIRE_ALL=1)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from buildkit.gitinfo import source_files
from buildkit.options import TRUE_WORDS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def require(condition: bool, reason: str) -> None:
    """Skip when a machine prerequisite is missing; fail instead where CI demands all."""
    if condition:
        return
    if os.environ.get("BUILDKIT_REQUIRE_ALL", "").strip().lower() in TRUE_WORDS:
        pytest.fail(f"required prerequisite missing (BUILDKIT_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


@dataclass
class GitRepo:
    path: Path

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=self.path, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    def commit(self, message: str = "change", *, file: str | None = None) -> str:
        if file is not None:
            self.write(file, message + "\n")
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", name)
        else:
            self.git("tag", name)


def set_in_project(repo: GitRepo, line: str) -> None:
    """Add `line` (e.g. `buildx_cache = true`) to the repository's [tool.buildkit], committed."""
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.buildkit]\n", f"[tool.buildkit]\n{line}\n", 1)
    )
    repo.commit(f"[tool.buildkit] {line}")


def init_repo(path: Path) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.email", "tests@example.invalid")
    repo.git("config", "user.name", "buildkit tests")
    repo.git("config", "commit.gpgsign", "false")
    return repo


def copy_fixture(name: str, target: Path) -> GitRepo:
    shutil.copytree(FIXTURES / name, target)
    repo = init_repo(target)
    repo.write(".gitignore", "build/\ndist/\n__pycache__/\n")
    repo.commit("initial")
    return repo


def snapshot_repository(target: Path, *caches: str, tag: str = "v1.2.3") -> GitRepo:
    """This working tree as git sees it (tracked and untracked-not-ignored), committed and
    tagged in `target`, with build/wheelhouse and the named caches under build/ copied so
    image builds there need no network."""
    for source in source_files(ROOT, ROOT):
        if source.is_file():
            destination = target / source.relative_to(ROOT)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    for cache in ("wheelhouse", *caches):
        found = ROOT / "build" / cache
        require(
            found.is_dir() and any(found.rglob("*")),
            f"build/{cache} is empty; run `python -m buildkit wheelhouse` (nox -s tests "
            "does; add --claude-image for the Claude Code cache)",
        )
        shutil.copytree(found, target / "build" / cache)
    repo = init_repo(target)
    repo.commit("snapshot")
    repo.tag(tag)
    return repo


def read_report(repo: GitRepo, name: str = "report.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo.path / "build" / name).read_text())
    return data


def step_result(report: dict[str, Any], step_id: str) -> dict[str, Any]:
    """The result of `service:stage` in a JSON report."""
    service, stage = step_id.split(":")
    return next(r for r in report["results"] if (r["service"], r["stage"]) == (service, stage))


def artifact_of(result: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(a for a in result["artifacts"] if a["kind"] == kind)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {f"{r['service']}:{r['stage']}": r["status"] for r in report["results"]}


def run_buildkit(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, "COLUMNS": "200", **(env or {})}
    merged.pop("GITHUB_ACTIONS", None)
    merged.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "buildkit", *args],
        cwd=cwd,
        env=merged,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_secret_nowhere(
    secret: str, repo: GitRepo, output: str, username: str = "builder"
) -> None:
    """Neither the secret nor its base64 (a docker config's `auth`) in the output, the
    report or any log."""
    encoded = base64.b64encode(f"{username}:{secret}".encode()).decode()
    for text in (secret, encoded):
        assert text not in output
    for path in (repo.path / "build").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log"):
            content = path.read_text(errors="replace")
            assert secret not in content, path
            assert encoded not in content, path
