"""The push stage's logic in milliseconds: the registry is an in-memory one behind httpx's
MockTransport (tests/memory_registry.py), handed to the stage through the step context's
registry factory, with the environment it reads. The image is one a buildx bake staged
(the path that needs no engine); the engine's push by digest is tested against real
engines and registries in test_images.py and test_multiplatform.py.

What a user would notice: every tag moves to the staged digest and is verified; a refused
tag fails the push with the registry's exit code and lists what was and was not pushed; a
registry that acknowledges a tag it does not keep is caught by verification, never
reported as pushed; credentials come from the run's environment only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from buildkit.config import load_project
from buildkit.deps.envs import Envs
from buildkit.engine.build import PlatformImage
from buildkit.gitinfo import GitInfo
from buildkit.model import Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.registry.credentials import Credentials
from buildkit.stages import push
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import BuiltImage, Staged
from tests.helpers import ROOT
from tests.memory_registry import OCI_INDEX, MemoryRegistry

COMMIT = "c0ffee" + "0" * 34
PATH = "platform/toolman"
TAGS = ("v1.0.0", "1.0.0", "latest")
STEP = Step("toolman", "push")
ENV = {"BUILDKIT_REGISTRY_USERNAME": "robot", "BUILDKIT_REGISTRY_PASSWORD": "s3cret"}


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


def staged(registry: MemoryRegistry) -> BuiltImage:
    """A two-platform index as a bake leaves it under its staging tag."""
    labels = {"org.opencontainers.image.revision": COMMIT}
    children = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": registry.image(PATH, platform, labels),
            "size": 1,
            "platform": {"os": "linux", "architecture": platform.split("/")[1]},
        }
        for platform in ("linux/amd64", "linux/arm64")
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    digest = registry.put_manifest(PATH, "staging-c0ffee0", index)
    refs = tuple(f"{registry.domain}/{PATH}:{tag}" for tag in TAGS)
    return BuiltImage(
        tags=refs,
        backend="buildx",
        platforms=(PlatformImage("linux/amd64"), PlatformImage("linux/arm64")),
        labels=labels,
        staged=Staged("toolman", refs, f"{registry.domain}/{PATH}:staging-c0ffee0", digest),
    )


def context(registry: MemoryRegistry, image: BuiltImage, tmp_path: Path) -> Context:
    options = Options(tag="v1.0.0", registry=f"{registry.domain}/platform", report=tmp_path)
    git = GitInfo(commit=COMMIT, dirty=False, tag="v1.0.0", distance=0, version="1.0.0")
    built = Result("toolman", "image", Status.OK, 1.0, artifacts=(image.to_artifact(),))
    needs = {"toolman:image": built}
    project = replace(load_project(ROOT), root=tmp_path)  # build/ under tmp_path
    return Context(
        project, options, git, Envs(tmp_path), Runner(),
        needs=needs, env=ENV, registry=registry.factory,
    )  # fmt: skip


def record(outcome_artifacts: tuple[object, ...]) -> dict[str, object]:
    found = next(a for a in outcome_artifacts if getattr(a, "kind", "") == "push")
    details: dict[str, object] = found.details  # type: ignore[attr-defined]
    return details


def test_every_tag_moves_to_the_staged_digest_and_is_verified(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    image = staged(registry)
    assert image.staged is not None
    outcome = push.run(STEP, context(registry, image, tmp_path))
    assert outcome.status is Status.OK, outcome.reason
    pushed = record(outcome.artifacts)
    assert pushed["verified"] is True
    assert pushed["digest"] == image.staged.digest
    assert pushed["not_pushed"] == []
    assert sorted(pushed["platforms"]) == ["linux/amd64", "linux/arm64"]  # type: ignore[call-overload]
    assert registry.tags(PATH) == sorted([*TAGS, "staging-c0ffee0"])
    assert {registry.manifests[(PATH, tag)][1] for tag in TAGS} == {
        registry.manifests[(PATH, "staging-c0ffee0")][1]
    }
    assert pushed["sbom"] == "build/sbom/toolman.cdx.json"  # unsigned: an SBOM all the same
    sbom = json.loads((tmp_path / "build/sbom/toolman.cdx.json").read_text())
    assert sbom["metadata"]["component"]["version"] == image.staged.digest


def test_credentials_come_from_the_runs_environment(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    push.run(STEP, context(registry, staged(registry), tmp_path))
    assert registry.clients == [("registry.test", Credentials("robot", "s3cret"))]


def test_a_refused_tag_fails_and_says_what_was_pushed(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    registry.refused = {"1.0.0"}
    outcome = push.run(STEP, context(registry, staged(registry), tmp_path))
    assert outcome.status is Status.FAILED
    assert outcome.error_code == 7  # the registry's refusal
    assert "refused the credentials" in outcome.reason
    pushed = record(outcome.artifacts)
    assert [item["ref"].rsplit(":", 1)[1] for item in pushed["pushed"]] == ["v1.0.0"]  # type: ignore[attr-defined]
    assert pushed["not_pushed"] == [f"registry.test/{PATH}:{t}" for t in ("1.0.0", "latest")]
    assert pushed["verified"] is False


def test_a_tag_the_registry_acknowledges_but_does_not_keep_is_never_reported_pushed(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    registry.forgotten = {"latest"}
    outcome = push.run(STEP, context(registry, staged(registry), tmp_path))
    assert outcome.status is Status.FAILED
    assert outcome.error_code == 7
    assert "latest" in outcome.reason
    assert record(outcome.artifacts)["verified"] is False


def test_a_recorded_push_stands_only_while_the_tags_still_resolve(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    image = staged(registry)
    ctx = context(registry, image, tmp_path)
    outcome = push.run(STEP, ctx)
    recorded = Result.of(STEP, outcome, 1.0)
    assert push.still_valid(STEP, recorded, ctx) == recorded
    moved = registry.image(PATH, "linux/amd64", {"org.opencontainers.image.revision": "old"})
    registry.manifests[(PATH, "latest")] = registry.manifests[(PATH, moved)]
    assert push.still_valid(STEP, recorded, ctx) is None


def test_a_new_bake_is_a_new_push_key(registry: MemoryRegistry, tmp_path: Path) -> None:
    """Tags, platforms and smoke results can be the same for two bakes (a rebuild with the
    same version); the staged digest tells them apart, so the push is not skipped."""
    from buildkit.stages import step_key

    image = staged(registry)
    assert image.staged is not None
    first = step_key(STEP, context(registry, image, tmp_path))
    other = replace(image, staged=replace(image.staged, digest="sha256:" + "1" * 64))
    assert step_key(STEP, context(registry, other, tmp_path)) != first


def test_an_image_with_no_tag_fails_the_push_and_pushes_nothing(
    registry: MemoryRegistry, tmp_path: Path
) -> None:
    """Not an internal error (the verification loop once left its result unbound)."""
    image = staged(registry).to_artifact()
    untagged = replace(image, details={**image.details, "tags": []})
    ctx = context(registry, staged(registry), tmp_path)
    built = Result("toolman", "image", Status.OK, 1.0, artifacts=(untagged,))
    outcome = push.run(STEP, replace(ctx, needs={"toolman:image": built}))
    assert outcome.status is Status.FAILED
    assert outcome.reason == "toolman:image names no tag to push; nothing was pushed"
    assert registry.tags(PATH) == ["staging-c0ffee0"]
