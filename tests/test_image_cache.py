"""Image steps and the cache, against the real engine, on each image store: a recorded
image is reused (and tagged again), an image found only by its dev.buildkit.key label is
reused after build/cache is deleted, a removed image is built again, and image keys move
with the Dockerfile, the shared .dockerignore, the directories the image's user owns, the
base image and --debug."""

from __future__ import annotations

import json
import shutil
import uuid
from typing import Any

import pytest

from buildkit.config import load_project
from buildkit.deps.envs import Envs
from buildkit.engine.client import Engine
from buildkit.gitinfo import read_git_info
from buildkit.model import Result, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages import step_key
from buildkit.stages.context import Context
from tests.engines import EngineUnderTest
from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, step_result

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
ENGINE = ("--image-backend", "engine")  # these tests are about the engine backend


@pytest.fixture(scope="module")
def engine(store_engine: EngineUnderTest) -> Engine:
    """Every test here runs on each image store (this overrides conftest's engine)."""
    return store_engine.engine


@pytest.fixture(scope="module")
def env(store_engine: EngineUnderTest) -> dict[str, str]:
    return {**OFFLINE, **store_engine.env}


@pytest.fixture(scope="module")
def built(engine: Engine, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("img") / "mini")
    repo.tag("v4.0.0")
    prefix = f"localhost:5000/c{uuid.uuid4().hex[:8]}"
    (repo.path / "prefix").write_text(prefix)
    (repo.path / "env.json").write_text(json.dumps(env))
    result = run_buildkit("images", *ENGINE, "-r", prefix, cwd=repo.path, env=env)
    assert result.returncode == 0, result.stdout
    return repo


def images(repo: GitRepo) -> Any:
    env = json.loads((repo.path / "env.json").read_text())
    return run_buildkit(
        "images", *ENGINE, "-r", (repo.path / "prefix").read_text(), cwd=repo.path, env=env
    )


def test_recorded_image_is_reused_and_tagged_again(engine: Engine, built: GitRepo) -> None:
    first = step_result(read_report(built), "alpha:image")["artifacts"][0]
    engine.client.images.remove(first["tags"][0])  # a tag lost, the image kept
    assert images(built).returncode == 0
    again = step_result(read_report(built), "alpha:image")
    assert again["status"] == "cached"
    assert again["artifacts"][0]["id"] == first["id"]
    tagged = engine.image(first["tags"][0])
    assert tagged is not None
    assert tagged.id == first["id"]


def test_an_image_is_found_by_its_key_label_after_the_record_is_gone(
    engine: Engine, built: GitRepo
) -> None:
    first = step_result(read_report(built), "alpha:image")["artifacts"][0]
    assert engine.image(first["id"]).labels["dev.buildkit.key"]  # type: ignore[union-attr]
    shutil.rmtree(built.path / "build" / "cache")
    assert images(built).returncode == 0
    reused = step_result(read_report(built), "alpha:image")
    assert reused["status"] == "cached"
    assert reused["reason"].startswith("found images built from the same inputs")
    assert reused["artifacts"][0]["id"] == first["id"]
    log = built.path / "build/logs/alpha-image.log"
    assert not log.exists() or "Step 1/" not in log.read_text()


def test_a_removed_image_is_built_again(engine: Engine, built: GitRepo) -> None:
    first = step_result(read_report(built), "beta:image")["artifacts"][0]
    engine.client.images.remove(first["id"], force=True)
    assert images(built).returncode == 0
    rebuilt = step_result(read_report(built), "beta:image")
    assert rebuilt["status"] == "ok"
    assert engine.image(rebuilt["artifacts"][0]["id"]) is not None


def image_key(repo: GitRepo, engine: Engine, service: str, **options: Any) -> str | None:
    project = load_project(repo.path)
    opts = Options(
        tag="latest",
        registry="localhost:5000/mini",
        report=repo.path / "r.json",
        offline=True,
        **options,
    )
    wheel = next(
        r for r in read_report(repo)["results"] if r["service"] == service and r["stage"] == "wheel"
    )
    ctx = Context(
        project,
        opts,
        read_git_info(repo.path),
        Envs(repo.path / "build"),
        Runner(),
        engine=engine,
        needs={f"{service}:wheel": Result.from_json(wheel)},
    )
    return step_key(Step(service, "image"), ctx)


def test_image_keys_move_with_their_inputs(built: GitRepo, engine: Engine) -> None:
    before = {s: image_key(built, engine, s) for s in ("alpha", "beta")}
    assert None not in before.values()
    dockerfile = built.path / "dockerfiles/alpha.Dockerfile"
    original = dockerfile.read_text()
    dockerfile.write_text(original + "# a comment changes the file\n")
    assert [image_key(built, engine, s) != before[s] for s in ("alpha", "beta")] == [True, False]
    dockerfile.write_text(original)
    ignore = built.path / "dockerfiles/.dockerignore"
    ignored = ignore.read_text()
    ignore.write_text(ignored + "!extra\n")
    assert [image_key(built, engine, s) != before[s] for s in ("alpha", "beta")] == [True, True]
    ignore.write_text(ignored)
    pyproject = built.path / "pyproject.toml"
    config = pyproject.read_text()
    owned = 'user_dirs = ["/var/lib/alpha"]'
    assert owned in config
    pyproject.write_text(config.replace(owned, 'user_dirs = ["/var/lib/alpha", "/srv/alpha"]'))
    assert [image_key(built, engine, s) != before[s] for s in ("alpha", "beta")] == [True, False]
    pyproject.write_text(config)
    assert image_key(built, engine, "alpha") == before["alpha"]
    assert image_key(built, engine, "alpha", debug=True) != before["alpha"]
    other_base = f"buildkit-test/other-base:{uuid.uuid4().hex[:6]}"
    base = engine.image("python:3.11-slim")
    assert base is not None
    container = engine.client.containers.create(base.id, command=["true"])
    try:
        container.commit(
            repository=other_base.split(":", maxsplit=1)[0],
            tag=other_base.split(":")[1],
            changes=["LABEL made-by=buildkit-tests"],
        )
    finally:
        container.remove()
    try:
        assert image_key(built, engine, "alpha", base_image=other_base) != before["alpha"]
    finally:
        engine.client.images.remove(other_base)


def test_a_cached_image_gets_the_tags_this_run_asks_for(engine: Engine, built: GitRepo) -> None:
    """The key leaves tags out (they do not change an image), so a cache hit under another
    registry and tag must tag the image as this run asks, and report those tags."""
    first = step_result(read_report(built), "alpha:image")["artifacts"][0]
    other = f"localhost:5000/o{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images",
        *ENGINE,
        "-r",
        other,
        "-t",
        "elsewhere",
        "--services",
        "alpha",
        cwd=built.path,
        env=json.loads((built.path / "env.json").read_text()),
    )
    assert result.returncode == 0, result.stdout
    again = step_result(read_report(built), "alpha:image")
    assert again["status"] == "cached"
    image = again["artifacts"][0]
    assert image["name"] == f"{other}/alpha:elsewhere"
    assert all(tag.startswith(f"{other}/alpha:") for tag in image["tags"])
    tagged = engine.image(f"{other}/alpha:elsewhere")
    assert tagged is not None
    assert tagged.id == first["id"]


def test_a_half_built_image_carrying_the_key_is_not_reused(engine: Engine, built: GitRepo) -> None:
    """The engine's builder adds labels one LABEL step at a time, so the images between the
    first and the last of those steps carry the key label too. Once the finished image is
    removed and its parents kept, they are top-level images with the key: reusing one would
    ship an image without its version label."""
    assert images(built).returncode == 0
    first = step_result(read_report(built), "beta:image")["artifacts"][0]
    labels = first["labels"]
    key = labels["dev.buildkit.key"]
    engine.client.images.remove(first["id"], force=True, noprune=True)
    half_built = engine.images_labelled("dev.buildkit.key", key)
    assert half_built, "no image in between carries the key: the test proves nothing"
    assert all(info.labels != labels for info in half_built)
    shutil.rmtree(built.path / "build" / "cache")
    assert images(built).returncode == 0
    again = step_result(read_report(built), "beta:image")["artifacts"][0]
    image = engine.image(again["id"])
    assert image is not None
    assert image.labels == labels
    assert again["labels"]["org.opencontainers.image.version"] == "4.0.0"
