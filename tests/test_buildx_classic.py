"""buildx on the engine with the classic image store (what most installs and CI runners
have): its own BuildKit, buildx's `docker` driver, builds one platform and exports no
registry cache. What `auto` takes there, what an explicit buildx says, and a bake of
every image the plan has steps for."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildkit import pipeline
from buildkit.config import load_project
from buildkit.deps.envs import Envs, uv_binary
from buildkit.gitinfo import read_git_info
from buildkit.model import Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import STAGED
from tests.engines import EngineUnderTest, remove_images
from tests.helpers import (
    artifact_of,
    copy_fixture,
    read_report,
    run_buildkit,
    set_in_project,
    step_result,
)
from tests.registries import require_shared_registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}


def test_auto_takes_the_engine_where_buildx_cannot_export_the_registry_cache(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    """The classic image store's own BuildKit exports no cache: with `buildx_cache = true`
    and --push, `auto` takes the engine backend there (a bake would fail with "Cache export
    is not supported for the docker driver") and the report says why."""
    require_shared_registry()
    repo = copy_fixture("miniproject", tmp_path / "mini")
    set_in_project(repo, "buildx_cache = true")
    prefix = f"localhost:5000/c{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images", "--services", "alpha", "-r", prefix, "-p", "--platform",
        classic.engine.platform(), cwd=repo.path, env={**OFFLINE, **classic.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(repo)
    assert report["options"]["image_backend"] == "engine"
    [note] = report["notes"]
    assert "the engine backend" in note
    assert "buildx_cache = true" in note
    assert note in " ".join(result.stdout.split())
    assert artifact_of(step_result(report, "alpha:push"), "push")["verified"] is True
    remove_images(classic, f"{prefix}/alpha")


def test_asking_for_buildx_there_fails_before_building_and_names_the_fix(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    set_in_project(repo, "buildx_cache = true")
    result = run_buildkit(
        "images", "--image-backend", "buildx", "-r", "localhost:5000/never", "-p",
        "--platform", classic.engine.platform(), cwd=repo.path, env={**OFFLINE, **classic.env},
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "cannot export the registry cache that `buildx_cache = true` asks for" in message
    assert "set `buildx_cache = false` in [tool.buildkit]" in message
    assert "--image-backend engine" in message
    assert not (repo.path / "build" / "report.json").exists()  # nothing ran


def test_the_bake_builds_exactly_the_images_the_plan_has_steps_for(
    classic: EngineUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Options with no services selected (the API's "all of them") plan an image step for
    every service, and the bake bakes every one of them (it used to bake none)."""
    repo = copy_fixture("miniproject", tmp_path / "mini")
    monkeypatch.setenv("DOCKER_HOST", classic.host)
    project = load_project(repo.path)
    options = Options(
        tag="latest", registry=f"localhost:5000/p{uuid.uuid4().hex[:8]}",
        report=tmp_path / "r.json", offline=True, stages=("wheel", "image"),
        image_backend="buildx", services=(),
    )  # fmt: skip
    steps = pipeline.plan(project, options)
    assert [s.id for s in steps if s.stage == "image"] == ["alpha:image", "beta:image"]
    uv_binary()
    ctx = Context(
        project, options, read_git_info(repo.path), Envs(repo.path / "build", offline=True),
        Runner(), engine=classic.engine, env=os.environ,
    )  # fmt: skip
    try:
        results = {r.id: r for r in pipeline.run(steps, ctx, pipeline.RUNNERS, Quiet())}
    finally:
        remove_images(classic, f"{options.registry}/alpha", f"{options.registry}/beta")
    assert {step: result.status for step, result in results.items()} == {
        step.id: Status.OK for step in steps
    }, {step: result.reason for step, result in results.items()}
    baked = [a.name for a in results["images:bake"].artifacts if a.kind == STAGED]
    assert baked == ["alpha", "beta"]
    bake_file = json.loads((repo.path / "build" / "buildx" / "docker-bake.json").read_text())
    assert bake_file["group"]["default"]["targets"] == ["alpha", "beta"]


class Quiet:
    """The executor's observer, saying nothing."""

    def planned(self, steps: Sequence[Step]) -> None: ...
    def started(self, step: Step) -> None: ...
    def command(self, step: Step, command: str) -> None: ...
    def output(self, step: Step, line: str) -> None: ...
    def finished(self, step: Step, result: Result) -> None: ...
