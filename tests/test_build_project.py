"""build-all on a real two-service project: real uv, pytest, ruff, mypy and wheels.

Packages come from uv's cache only (BUILDKIT_OFFLINE=1, as the `tests` session sets it),
so these tests contact no package index.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, statuses

pytestmark = pytest.mark.slow
OFFLINE = {"BUILDKIT_OFFLINE": "1"}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[GitRepo, subprocess.CompletedProcess[str]]:
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("built") / "mini")
    repo.tag("v1.2.3")
    result = run_buildkit("build-all", "--no-docker", cwd=repo.path, env=OFFLINE)
    return repo, result


def test_clean_project_builds_and_reports(built: tuple[GitRepo, Any]) -> None:
    repo, result = built
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(repo)
    assert report["ok"] is True
    assert report["git"]["version"] == "1.2.3"
    by_step = statuses(report)
    for service in ("alpha", "beta"):
        for stage in ("test", "lint", "fmt", "wheel"):
            assert by_step[f"{service}:{stage}"] == "ok"
        assert by_step[f"{service}:image"] == "skipped"
    assert "OK" in result.stdout
    assert "1 passed" in result.stdout


def test_wheels_are_versioned_from_git_and_recorded(built: tuple[GitRepo, Any]) -> None:
    repo, _ = built
    dist = sorted(path.name for path in (repo.path / "dist").iterdir())
    assert dist == [
        "mini_alpha-1.2.3-py3-none-any.whl",
        "mini_alpha-1.2.3.tar.gz",
        "mini_beta-1.2.3-py3-none-any.whl",
        "mini_beta-1.2.3.tar.gz",
    ]
    wheel = next(r for r in read_report(repo)["results"] if r["stage"] == "wheel")
    artifacts = {a["kind"]: a for a in wheel["artifacts"]}
    path = repo.path / artifacts["wheel"]["name"]
    assert artifacts["wheel"]["size"] == path.stat().st_size
    assert artifacts["wheel"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_installed_wheel_answers_version(built: tuple[GitRepo, Any]) -> None:
    repo, _ = built
    script = repo.path / "build" / "wheel-check" / "alpha" / "bin" / "mini-alpha"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "mini-alpha 1.2.3"


def test_failing_test_names_service_and_stage(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.write(
        "services/beta/tests/test_beta.py",
        "from beta import add\n\n\ndef test_add() -> None:\n    assert add(2, 2) == 5\n",
    )
    repo.commit("break beta")
    # One job at a time: the order is build-all.sh's, so what "stops" is deterministic.
    result = run_buildkit("build-all", "--no-docker", "-j", "1", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 1
    assert "failed: beta (test)" in result.stdout
    assert "assert 4 == 5" in result.stdout  # the tail of pytest's output is shown
    by_step = statuses(read_report(repo))
    assert by_step["alpha:test"] == "ok"
    assert by_step["beta:test"] == "failed"
    assert by_step["alpha:lint"] == "skipped"  # stopped at the first failure


def test_lint_error_is_that_services_lint_failure(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.write(
        "services/alpha/src/alpha/extra.py",
        "import os\n\n\ndef half(value: int) -> int:\n    return value / 2\n",
    )
    repo.commit("lint errors in alpha")
    result = run_buildkit("build-all", "--no-docker", "--keep-going", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 1
    assert "failed: alpha (lint)" in result.stdout
    report = read_report(repo)
    by_step = statuses(report)
    assert by_step["alpha:lint"] == "failed"
    assert by_step["beta:lint"] == "ok"
    assert by_step["alpha:wheel"] == "ok"  # --keep-going ran the rest
    lint = next(r for r in report["results"] if r["service"] == "alpha" and r["stage"] == "lint")
    assert "F401" in lint["output_tail"]  # an unused import, found by ruff
    assert "Incompatible return value" in lint["output_tail"]  # mypy --strict


def test_fmt_check_and_fix(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    ugly = repo.write("services/beta/src/beta/ugly.py", "x = {  'a':1 }\n")
    repo.commit("badly formatted")
    checked = run_buildkit("fmt", cwd=repo.path, env=OFFLINE)
    assert checked.returncode == 1
    assert "failed: beta (fmt)" in checked.stdout
    assert "nox -s fmt -- --fix" in checked.stdout
    fixed = run_buildkit("fmt", "--fix", cwd=repo.path, env=OFFLINE)
    assert fixed.returncode == 0
    assert ugly.read_text() == 'x = {"a": 1}\n'


def test_services_option_builds_only_those(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    result = run_buildkit("test", "--services", "beta", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 0
    assert list(statuses(read_report(repo))) == ["beta:test"]


def test_test_workers_without_xdist_say_what_to_add(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dockerfile = "dockerfiles/beta.Dockerfile"\n',
            'dockerfile = "dockerfiles/beta.Dockerfile"\ntest_workers = 2\n',
        )
    )
    repo.commit("run beta's tests on two workers")
    result = run_buildkit("test", "--services", "beta", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 1
    assert "test_workers = 2 needs pytest-xdist" in result.stdout
    assert "services/beta/pyproject.toml" in result.stdout
