"""The buildx backend's generated invocation (pure: no buildx needed), index assembly,
platform options, and the plan a buildx run makes."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from buildkit import pipeline
from buildkit.config import load_project
from buildkit.engine import buildx
from buildkit.engine.client import Engine
from buildkit.errors import StageFailed
from buildkit.options import Options, parse_platforms
from buildkit.proc import Runner
from buildkit.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    PlatformManifest,
    index_for,
)
from tests.engines import STORES, require_store
from tests.helpers import ROOT, copy_fixture, require, run_buildkit

TARGET = buildx.BakeTarget(
    name="toolman",
    context=Path("/ctx/toolman"),
    platforms=("linux/amd64", "linux/arm64"),
    tags=("localhost:5000/p/toolman:staging-abc1234",),
    labels={"org.opencontainers.image.revision": "abc"},
    args={"BASE_IMAGE": "python:3.11-slim", "LOG_LEVEL": "info"},
    cache_ref="localhost:5000/p/toolman:buildcache",
)


def test_bake_file_has_one_target_per_image_with_everything() -> None:
    other = buildx.BakeTarget("mcp-wrapper", Path("/ctx/w"), ("linux/amd64",), ("r/w:t",), {}, {})
    data = buildx.bake_file(buildx.BakeRequest(targets=(TARGET, other), push=True))
    assert data["group"]["default"]["targets"] == ["toolman", "mcp-wrapper"]
    toolman = data["target"]["toolman"]
    assert toolman == {
        "context": "/ctx/toolman",
        "dockerfile": "Dockerfile",
        "platforms": ["linux/amd64", "linux/arm64"],
        "tags": ["localhost:5000/p/toolman:staging-abc1234"],
        "labels": {"org.opencontainers.image.revision": "abc"},
        "args": {"BASE_IMAGE": "python:3.11-slim", "LOG_LEVEL": "info"},
        "cache-from": ["type=registry,ref=localhost:5000/p/toolman:buildcache"],
        "cache-to": ["type=registry,ref=localhost:5000/p/toolman:buildcache,mode=max"],
    }
    assert "cache-from" not in data["target"]["mcp-wrapper"]
    json.dumps(data)  # the file bake reads is plain JSON


def test_no_cache_and_no_push_change_the_file() -> None:
    data = buildx.bake_file(buildx.BakeRequest(targets=(TARGET,), push=False, no_cache=True))
    assert data["target"]["toolman"]["no-cache"] is True
    assert "cache-to" not in data["target"]["toolman"]  # nothing is written without a push


def test_bake_command_line() -> None:
    request = buildx.BakeRequest(targets=(TARGET,), push=True, no_cache=True, builder="multi")
    argv = buildx.bake_command(request, Path("/b/bake.json"), Path("/b/meta.json"))
    assert argv == [
        "docker",
        "buildx",
        "bake",
        "--file",
        "/b/bake.json",
        "--metadata-file",
        "/b/meta.json",
        "--progress",
        "plain",
        "--builder",
        "multi",
        "--push",
        "--no-cache",
    ]
    load = buildx.bake_command(
        buildx.BakeRequest(targets=(TARGET,), push=False, load=True), Path("b.json"), Path("m.json")
    )
    assert load[-1] == "--load"


def test_digests_are_read_from_the_metadata_file() -> None:
    metadata = {
        "toolman": {"containerimage.digest": "sha256:aaa", "image.name": "x"},
        "mcp-wrapper": {"containerimage.descriptor": {"digest": "sha256:bbb"}},
    }
    assert buildx.digests_from_metadata(metadata, ["toolman", "mcp-wrapper"]) == {
        "toolman": "sha256:aaa",
        "mcp-wrapper": "sha256:bbb",
    }
    with pytest.raises(StageFailed, match="no digest for orchestrator"):
        buildx.digests_from_metadata(metadata, ["orchestrator"])


def test_index_media_type_follows_the_children() -> None:
    docker_children = [
        PlatformManifest("linux/amd64", "sha256:a", 10, DOCKER_MANIFEST),
        PlatformManifest("linux/arm64", "sha256:b", 11, DOCKER_MANIFEST),
    ]
    body, media_type = index_for(docker_children)
    assert media_type == DOCKER_LIST
    data = json.loads(body)
    assert [m["platform"] for m in data["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert [m["size"] for m in data["manifests"]] == [10, 11]
    _, oci = index_for([PlatformManifest("linux/amd64", "sha256:a", 10, OCI_MANIFEST)])
    assert oci == OCI_INDEX


def test_unknown_platform_lists_the_valid_form() -> None:
    with pytest.raises(Exception, match="'linux/s390x' is not a supported platform") as caught:
        parse_platforms("linux/amd64,linux/s390x")
    assert "linux/amd64, linux/arm64" in str(caught.value)
    assert parse_platforms("linux/arm64, linux/amd64,linux/arm64") == ("linux/arm64", "linux/amd64")


def test_unknown_platform_exits_2_before_anything_runs(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = run_buildkit(
        "build-all", "--platform", "windows/amd64", "--report", str(report), cwd=ROOT
    )
    assert result.returncode == 2
    assert "'windows/amd64' is not a supported platform" in result.stderr
    assert "linux/amd64,linux/arm64" in result.stderr
    assert not report.exists()


def test_push_defaults_to_both_platforms() -> None:
    from buildkit.args import parse
    from buildkit.cli import resolve_options

    pushing, _ = resolve_options(parse(["build-all", "-p"]), ROOT)
    assert pushing.platforms == ("linux/amd64", "linux/arm64")
    local, _ = resolve_options(parse(["build-all"]), ROOT)
    assert local.platforms == ()  # the engine's own platform
    chosen, _ = resolve_options(parse(["build-all", "-p", "--platform", "linux/arm64"]), ROOT)
    assert chosen.platforms == ("linux/arm64",)


def test_a_buildx_plan_bakes_every_image_in_one_step(tmp_path: Path) -> None:
    """One `images:bake` step waits for every wheel and builds every image (claude-code's
    too); each image step then needs only the bake. The engine backend has no bake: each
    image waits for its own wheel (and its siblings')."""
    project = load_project(ROOT)
    options = Options(
        tag="v1", registry="r", report=tmp_path / "r.json", image_backend="buildx",
        push=True, claude_image=True,
    )  # fmt: skip
    steps = {step.id: step for step in pipeline.plan(project, options)}
    assert [s for s in steps if s.endswith((":bake", ":image"))] == [
        "images:bake",
        "orchestrator:image",
        "toolman:image",
        "mcp_wrapper:image",
        "claude-code:image",
    ]
    assert steps["images:bake"].needs == (
        "orchestrator:wheel",
        "toolman:wheel",
        "mcp_wrapper:wheel",
    )
    assert steps["toolman:image"].needs == ("images:bake",)
    assert steps["claude-code:image"].needs == ("images:bake",)
    assert steps["claude-code:push"].needs[0] == "claude-code:image"
    engine = Options(tag="v1", registry="r", report=tmp_path / "r.json", image_backend="engine")
    by_id = {s.id: s for s in pipeline.plan(project, engine)}
    assert "images:bake" not in by_id
    assert by_id["toolman:image"].needs == ("toolman:wheel",)
    assert by_id["orchestrator:image"].needs == ("orchestrator:wheel", "toolman:wheel")


def fake_docker(tmp_path: Path, script: str) -> dict[str, str]:
    """A PATH whose `docker` is a script: the narrow seam for a buildx that is missing or
    answers in a given way, which cannot be arranged with the real one installed."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "docker").write_text("#!/bin/sh\n" + script)
    (fake_bin / "docker").chmod(0o755)
    return {"PATH": f"{fake_bin}:{os.environ['PATH']}"}


def test_asking_for_buildx_where_there_is_none_says_how_to_fix(
    engine: Engine, tmp_path: Path
) -> None:
    no_buildx = fake_docker(
        tmp_path, "echo \"docker: 'buildx' is not a docker command.\"; exit 1\n"
    )
    result = run_buildkit(
        "images", "--image-backend", "buildx", "--services", "toolman", cwd=ROOT, env=no_buildx
    )
    assert result.returncode == 4
    assert "docker buildx is not available" in result.stderr
    assert "--image-backend engine" in result.stderr


@pytest.mark.parametrize("where", ["--builder", "[tool.buildkit] builder"])
def test_a_named_builder_that_does_not_answer_fails_instead_of_being_ignored(
    engine: Engine, tmp_path: Path, where: str
) -> None:
    """Under `auto` too: naming a builder asks for buildx on it, never the engine instead."""
    name = f"bk-absent-{uuid.uuid4().hex[:8]}"
    repo = copy_fixture("miniproject", tmp_path / "mini")
    named: tuple[str, ...] = ("--builder", name)
    if where != "--builder":
        pyproject = repo.path / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace(
                "[tool.buildkit]\n", f'[tool.buildkit]\nbuilder = "{name}"\n'
            )
        )
        named = ()
    result = run_buildkit("images", *named, "--services", "alpha", cwd=repo.path)
    assert result.returncode == 4, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"buildx builder '{name}' (--builder, or [tool.buildkit] builder) does not answer" in (
        message
    )
    assert "`docker buildx ls` lists the builders" in message
    assert not (repo.path / "build" / "report.json").exists()  # nothing was built


@pytest.mark.parametrize(
    ("driver", "store", "platforms", "push", "cache", "backend"),
    [
        (None, "containerd", 1, True, False, "engine"),  # no buildx
        ("docker", "classic", 1, True, False, "buildx"),
        ("docker", "classic", 2, True, False, "engine"),  # the docker driver: one platform there
        ("docker", "classic", 1, True, True, "engine"),  # and no registry cache export there
        ("docker", "classic", 1, False, True, "buildx"),  # no push: the cache is only read
        ("docker", "containerd", 2, True, False, "buildx"),
        ("docker", "containerd", 2, True, True, "buildx"),
        ("docker", "containerd", 2, False, False, "engine"),  # buildx loads no two platforms
        ("docker-container", "", 2, True, True, "buildx"),
        ("remote", "", 2, False, False, "engine"),  # cannot load two platforms
        ("kubernetes", "", 1, False, False, "buildx"),
    ],
)
def test_auto_takes_buildx_only_where_it_works(
    driver: str | None, store: str, platforms: int, push: bool, cache: bool, backend: str
) -> None:
    builder = buildx.Builder("b", driver, store) if driver else None
    chosen, why = buildx.auto_backend(builder, platforms, push, cache)
    assert chosen == backend
    assert bool(why) == (backend == "engine")
    if cache and backend == "engine" and driver:
        assert "buildx_cache = true" in why


INSPECT = """Name:          k8s
Driver:        kubernetes
Nodes:
Name:             k8s0
Labels:
 org.mobyproject.buildkit.worker.executor:         oci
"""


def test_the_builder_is_read_from_buildx_inspect(tmp_path: Path) -> None:
    (tmp_path / "inspect.txt").write_text(INSPECT)
    env = fake_docker(
        tmp_path,
        '[ "$1 $2 $3 $4" = "buildx inspect --builder k8s" ] || exit 1\n'
        f"cat {tmp_path}/inspect.txt\n",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", env["PATH"])
        assert buildx.inspect_builder(Runner(), "k8s") == buildx.Builder(
            "k8s", "kubernetes", "classic"
        )
        assert buildx.inspect_builder(Runner(), "other") is None
        patch.setenv("PATH", str(tmp_path / "empty"))  # no docker at all
        assert buildx.inspect_builder(Runner(), "k8s") is None


@pytest.mark.parametrize("store", STORES)
def test_a_docker_builder_knows_its_engines_image_store(store: str) -> None:
    """The real builders of the machine's two engines (ci/engines.sh)."""
    engine = require_store(store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", engine.host)
        found = buildx.inspect_builder(Runner())
    require(found is not None, "docker buildx does not answer; run `bash ci/prepare-machine.sh`")
    assert found is not None
    assert (found.driver, found.store) == ("docker", store)
