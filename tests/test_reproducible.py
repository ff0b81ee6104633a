"""The same commit built in two clean clones, in directories of different names and
depths: the wheels and sdists are byte for byte the same, and so is everything an image
is made from — the install tree of each platform (bytecode with file names relative to
the tree, no `direct_url.json` naming the host path, every time the commit's) — and the
image's `created` label is the commit's time, not the build's."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.engines import EngineUnderTest
from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, step_result

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory below `root`: its content hash and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[path.relative_to(root).as_posix()] = (digest, int(path.lstat().st_mtime))
    return found


def clone(source: GitRepo, target: Path) -> GitRepo:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(source.path), str(target)], check=True, timeout=60)
    return GitRepo(target)


def test_two_clones_build_the_same_wheels_and_image_inputs(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    source = copy_fixture("miniproject", tmp_path / "source")
    source.tag("v3.0.0")
    clones = [clone(source, tmp_path / "a"), clone(source, tmp_path / "b" / "deeper" / "clone")]
    for repo in clones:
        result = run_buildkit(
            "build-all", "--skip-tests", "--no-cache", "--image-backend", "engine",
            "--platform", "linux/amd64", "-t", "v3.0.0",
            cwd=repo.path, env={"BUILDKIT_OFFLINE": "1", **classic.env},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    first, second = clones
    dists = [sorted(p.name for p in (repo.path / "dist").iterdir()) for repo in clones]
    assert dists[0] == dists[1]
    assert len(dists[0]) == 4  # a wheel and an sdist per service
    for name in dists[0]:
        assert (first.path / "dist" / name).read_bytes() == (
            second.path / "dist" / name
        ).read_bytes()
    for service in ("alpha", "beta"):
        contexts = [tree(repo.path / "build" / "image-context" / service) for repo in clones]
        assert contexts[0] == contexts[1]
        assert not [name for name in contexts[0] if name.endswith("direct_url.json")]
    commit_time = first.git("log", "-1", "--format=%cI")
    for repo in clones:
        image = step_result(read_report(repo), "alpha:image")["artifacts"][0]
        created = image["labels"]["org.opencontainers.image.created"]
        assert created.replace("+00:00", "Z") == commit_time.replace("+00:00", "Z")
