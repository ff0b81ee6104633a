"""One BuildKit builds one project again and again, as on a developer's machine or a
long-lived runner: each image holds exactly what its context held, never what an earlier
build left in the builder.

BuildKit keeps the last context each builder received and sends only what it judges changed:
a file by its size and time, a directory by its mode and owner alone. Had the context's trees
stayed at one path (they did: `<os>-<arch>/`), a later commit's image would keep the earlier
commit's directory times, or get the time of the transfer on a directory holding a changed
file, and under a fixed SOURCE_DATE_EPOCH a file edited to the same size would keep its old
content; this test failed so on Docker 26.1's BuildKit. buildkit now puts the trees at a
path named by their digest (buildkit.deps.image_root.seal_trees)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.engines import EngineUnderTest, remove_images
from tests.helpers import GitRepo, copy_fixture, run_buildkit
from tests.registries import (
    SHARED_REGISTRY,
    LayerEntry,
    manifest_digest,
    require_shared_registry,
    top_layer_entries,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FIRST, LATER = 1_700_000_000, 1_700_086_400  # a day apart
SOURCE = "services/alpha/src/alpha/__init__.py"
INSTALLED = "opt/alpha/alpha/__init__.py"


def commit_at(repo: GitRepo, epoch: int, message: str) -> None:
    """Commit everything with `epoch` as the author's and committer's time."""
    when = f"@{epoch} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    for argv in (["git", "add", "-A"], ["git", "commit", "-q", "--allow-empty", "-m", message]):
        subprocess.run(argv, cwd=repo.path, env=env, check=True, timeout=30)


def edit(repo: GitRepo, old: str, new: str) -> None:
    assert len(old) == len(new)  # the same size: only content and time tell them apart
    path = repo.path / SOURCE
    path.write_text(path.read_text().replace(old, new, 1))


def build_alpha(
    engine: EngineUnderTest, repo: GitRepo, where: str, tag: str, env: dict[str, str]
) -> dict[str, LayerEntry]:
    """alpha built by the buildx backend and pushed as `tag`: what the two layers its
    Dockerfile adds hold (the install tree, the user's directory)."""
    result = run_buildkit(
        "build-all", "--skip-tests", "--services", "alpha", "--image-backend", "buildx",
        "--platform", "linux/amd64", "-t", tag, "-r", where, "-p",
        cwd=repo.path, env={"BUILDKIT_OFFLINE": "1", **engine.env, **env},
    )  # fmt: skip
    remove_images(engine, f"{where}/alpha")
    assert result.returncode == 0, result.stdout + result.stderr
    path = f"{where.split('/', 1)[1]}/alpha"
    return top_layer_entries(path, manifest_digest(SHARED_REGISTRY, path, tag), 2)


def test_each_build_of_one_builder_has_its_own_commits_times_and_content(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    require_shared_registry()
    engine = classic
    repo = copy_fixture("miniproject", tmp_path / "mini")
    where = f"localhost:5000/c{uuid.uuid4().hex[:8]}"
    commit_at(repo, FIRST, "first")
    first = build_alpha(engine, repo, where, "v1.0.0", {})
    assert {entry.mtime for entry in first.values()} == {FIRST}

    edit(repo, "left + right", "left - right")
    commit_at(repo, LATER, "later")
    later = build_alpha(engine, repo, where, "v1.0.1", {})
    stale = {name: entry.mtime for name, entry in later.items() if entry.mtime != LATER}
    assert stale == {}  # every directory too, the one holding the changed file included
    assert b"return left - right" in (later[INSTALLED].content or b"")

    edit(repo, "left - right", "left * right")  # not committed: SOURCE_DATE_EPOCH rules
    fixed = build_alpha(engine, repo, where, "v1.0.2", {"SOURCE_DATE_EPOCH": str(LATER)})
    assert later[INSTALLED].mtime == fixed[INSTALLED].mtime == LATER
    assert b"return left * right" in (fixed[INSTALLED].content or b"")
