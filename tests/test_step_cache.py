"""Content-addressed skipping on the real two-service fixture project: which inputs move
which keys, what a warm rerun and a one-file change run, that a deleted artifact is
rebuilt, and --changed-since / --print-matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from buildkit.cache import keys
from buildkit.config import load_project
from buildkit.deps.envs import Envs
from buildkit.gitinfo import read_git_info
from buildkit.model import Artifact, Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages import step_key
from buildkit.stages.context import Context
from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, statuses

pytestmark = pytest.mark.slow
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
CHECKS = ("test", "lint", "fmt", "wheel")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """The fixture project, built once, so its environments and records exist."""
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("warm") / "mini")
    repo.tag("v1.0.0")
    result = run_buildkit("build-all", "--no-docker", cwd=repo.path, env=OFFLINE)
    assert result.returncode == 0, result.stdout
    return repo


def context_for(repo: GitRepo, **options: Any) -> Context:
    project = load_project(repo.path)
    opts = Options(
        tag="latest",
        registry="localhost:5000/mini",
        report=repo.path / "build" / "r.json",
        offline=True,
        **options,
    )
    return Context(
        project, opts, read_git_info(repo.path), Envs(repo.path / "build", offline=True), Runner()
    )


def key(repo: GitRepo, target: str, stage: str, **options: Any) -> str | None:
    ctx = context_for(repo, **options)
    return step_key(Step(target, stage), ctx)


def all_keys(repo: GitRepo, **options: Any) -> dict[str, str | None]:
    return {f"{t}:{s}": key(repo, t, s, **options) for t in ("alpha", "beta") for s in CHECKS}


def changed(before: dict[str, str | None], after: dict[str, str | None]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_keys_are_stable(warm: GitRepo) -> None:
    assert all_keys(warm) == all_keys(warm)


def test_a_tracked_file_moves_only_its_services_keys(warm: GitRepo) -> None:
    before = all_keys(warm)
    source = warm.path / "services/alpha/src/alpha/__init__.py"
    original = source.read_text()
    source.write_text(original + "\n# edited\n")
    try:
        assert changed(before, all_keys(warm)) == {f"alpha:{s}" for s in CHECKS}
    finally:
        source.write_text(original)
    assert all_keys(warm) == before


def test_untracked_files_count_but_ignored_ones_do_not(warm: GitRepo) -> None:
    before = all_keys(warm)
    ignored = warm.path / "services/beta/src/beta/__pycache__/x.cpython-311.pyc"
    ignored.parent.mkdir(exist_ok=True)
    ignored.write_bytes(b"\0")
    (warm.path / "README.md").write_text("outside every service\n")
    assert all_keys(warm) == before
    new = warm.path / "services/beta/src/beta/extra.py"
    new.write_text("VALUE = 1\n")
    try:
        assert changed(before, all_keys(warm)) == {f"beta:{s}" for s in CHECKS}
    finally:
        new.unlink()


def test_dependency_pins_move_the_keys(warm: GitRepo) -> None:
    before = all_keys(warm)
    pyproject = warm.path / "services/alpha/pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace('test = ["pytest>=8"]', 'test = ["pytest>=8.0"]'))
    try:
        assert changed(before, all_keys(warm)) == {f"alpha:{s}" for s in CHECKS}
    finally:
        pyproject.write_text(original)


def test_tool_versions_environment_and_options(
    warm: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = all_keys(warm)
    real_version = keys.tool_version

    def newer_ruff(argv: tuple[str, ...]) -> str:
        return "ruff 99.0.0" if argv[0].endswith("ruff") else real_version(argv)

    monkeypatch.setattr(keys, "tool_version", newer_ruff)
    assert changed(before, all_keys(warm)) == {"alpha:lint", "alpha:fmt", "beta:lint", "beta:fmt"}
    monkeypatch.setattr(keys, "tool_version", real_version)
    monkeypatch.setattr(keys, "environment_packages", lambda env: "pytest==99.0\n")
    assert changed(before, all_keys(warm)) == {"alpha:test", "alpha:lint", "beta:test", "beta:lint"}
    monkeypatch.undo()
    assert changed(before, all_keys(warm, debug=True)) == {"alpha:test", "beta:test"}
    assert changed(before, all_keys(warm, fix=True)) == {"alpha:fmt", "beta:fmt"}


def test_tool_configuration_moves_lint_and_fmt(warm: GitRepo) -> None:
    before = all_keys(warm)
    pyproject = warm.path / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace("line-length = 100", "line-length = 90"))
    try:
        assert changed(before, all_keys(warm)) == {
            "alpha:lint",
            "alpha:fmt",
            "beta:lint",
            "beta:fmt",
        }
    finally:
        pyproject.write_text(original)


def test_a_new_version_moves_the_wheels_only(warm: GitRepo) -> None:
    before = all_keys(warm)
    warm.tag("v1.0.1")
    try:
        assert changed(before, all_keys(warm)) == {"alpha:wheel", "beta:wheel"}
    finally:
        warm.git("tag", "-d", "v1.0.1")


def test_warm_rerun_is_all_cached_and_a_touched_service_reruns_alone(warm: GitRepo) -> None:
    again = run_buildkit("build-all", "--no-docker", cwd=warm.path, env=OFFLINE)
    assert again.returncode == 0
    assert {statuses(read_report(warm))[f"{t}:{s}"] for t in ("alpha", "beta") for s in CHECKS} == {
        "cached"
    }
    source = warm.path / "services/beta/src/beta/__init__.py"
    original = source.read_text()
    source.write_text(original.replace("return left + right", "return right + left"))
    try:
        touched = run_buildkit("build-all", "--no-docker", cwd=warm.path, env=OFFLINE)
        assert touched.returncode == 0, touched.stdout
        after = statuses(read_report(warm))
        assert {after[f"beta:{s}"] for s in CHECKS} == {"ok"}
        assert {after[f"alpha:{s}"] for s in CHECKS} == {"cached"}
    finally:
        source.write_text(original)


def test_a_deleted_wheel_is_built_again(warm: GitRepo) -> None:
    run_buildkit("build-all", "--no-docker", cwd=warm.path, env=OFFLINE)
    for wheel in (warm.path / "dist").glob("mini_alpha-*.whl"):
        wheel.unlink()
    result = run_buildkit("wheel", cwd=warm.path, env=OFFLINE)
    assert result.returncode == 0
    assert statuses(read_report(warm)) == {"alpha:wheel": "ok", "beta:wheel": "cached"}
    assert list((warm.path / "dist").glob("mini_alpha-*.whl"))


def test_no_cache_runs_everything(warm: GitRepo) -> None:
    result = run_buildkit("test", "--no-cache", cwd=warm.path, env=OFFLINE)
    assert result.returncode == 0
    assert statuses(read_report(warm)) == {"alpha:test": "ok", "beta:test": "ok"}


def test_a_cached_record_from_another_key_is_not_used(warm: GitRepo) -> None:
    from buildkit.cache.store import StepCache

    cache = StepCache(warm.path / "build" / "cache")
    step = Step("alpha", "test")
    recorded = Result("alpha", "test", Status.OK, 1.0, artifacts=(Artifact("junit", "x.xml"),))
    cache.store(step, "key-one", recorded)
    assert cache.load(step, "key-one") == recorded
    assert cache.load(step, "key-two") is None
    cache.path(step).write_text("{not json")
    assert cache.load(step, "key-one") is None


def test_changed_since_and_the_matrix(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    matrix = run_buildkit("build-all", "--changed-since", "HEAD", "--print-matrix", cwd=repo.path)
    assert matrix.returncode == 0
    assert json.loads(matrix.stdout) == {"include": []}
    nothing = run_buildkit("build-all", "--changed-since", "HEAD", cwd=repo.path)
    assert nothing.returncode == 0
    assert "nothing to do" in nothing.stdout
    repo.write("services/alpha/src/alpha/new.py", "X = 1\n")
    matrix = run_buildkit("build-all", "--changed-since", "HEAD", "--print-matrix", cwd=repo.path)
    assert json.loads(matrix.stdout) == {
        "include": [{"service": "alpha", "image": "alpha", "session": "alpha"}]
    }
    repo.commit("alpha grows")
    beta = repo.path / "dockerfiles/beta.Dockerfile"
    repo.write("dockerfiles/beta.Dockerfile", beta.read_text() + "LABEL changed=yes\n")
    both = run_buildkit("images", "--changed-since", "HEAD~1", "--print-matrix", cwd=repo.path)
    assert [item["service"] for item in json.loads(both.stdout)["include"]] == ["alpha", "beta"]
    shared = copy_fixture("miniproject", tmp_path / "shared")
    shared.write("pyproject.toml", (shared.path / "pyproject.toml").read_text() + "\n# note\n")
    everything = run_buildkit(
        "build-all", "--changed-since", "HEAD", "--print-matrix", cwd=shared.path
    )
    assert len(json.loads(everything.stdout)["include"]) == 2


def test_an_unknown_ref_says_how_to_get_it(tmp_path: Path) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    result = run_buildkit("build-all", "--changed-since", "origin/nope", cwd=repo.path)
    assert result.returncode == 5
    assert "--changed-since 'origin/nope' is not a commit" in result.stderr
    assert "git fetch" in result.stderr
