"""Version computation on real temporary git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from buildkit.gitinfo import read_git_info
from tests.helpers import GitRepo, init_repo


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = init_repo(tmp_path / "repo")
    repo.write(".gitignore", "build/\n")
    repo.commit("first", file="a.txt")
    return repo


def test_on_a_tag_the_version_is_the_tag(repo: GitRepo) -> None:
    repo.tag("v1.2.3")
    info = read_git_info(repo.path)
    assert info.version == "1.2.3"
    assert info.tag == "v1.2.3"
    assert info.distance == 0
    assert info.dirty is False
    assert info.commit == repo.git("rev-parse", "HEAD")
    assert info.warnings == ()


def test_between_tags_the_next_patch_is_a_dev_release(repo: GitRepo) -> None:
    repo.tag("v1.2.3", annotated=True)
    for number in range(3):
        repo.commit(f"c{number}", file="a.txt")
    info = read_git_info(repo.path)
    short = repo.git("rev-parse", "--short=7", "HEAD")
    assert info.version == f"1.2.4.dev3+g{short}"
    assert info.distance == 3


def test_the_nearest_tag_wins_over_an_older_one(repo: GitRepo) -> None:
    repo.tag("v1.0.0")
    repo.commit("c1", file="a.txt")
    repo.tag("v1.1.0")
    repo.commit("c2", file="a.txt")
    assert read_git_info(repo.path).version.startswith("1.1.1.dev1+g")


def test_prerelease_tag_counts_toward_the_next_prerelease(repo: GitRepo) -> None:
    repo.tag("v2.0.0-rc.1")
    assert read_git_info(repo.path).version == "2.0.0rc1"
    repo.commit("c1", file="a.txt")
    assert read_git_info(repo.path).version.startswith("2.0.0rc2.dev1+g")


def test_highest_of_several_tags_on_one_commit(repo: GitRepo) -> None:
    repo.tag("v1.0.0-rc.2")
    repo.tag("v1.0.0")
    assert read_git_info(repo.path).version == "1.0.0"


def test_tags_that_are_not_semver_are_passed_over(repo: GitRepo) -> None:
    repo.tag("v1.0.0")
    repo.commit("c1", file="a.txt")
    repo.tag("v2-beta")
    repo.tag("vnext")
    info = read_git_info(repo.path)
    assert info.tag == "v1.0.0"
    assert info.version.startswith("1.0.1.dev1+g")


def test_uncommitted_changes_mark_the_version_dirty(repo: GitRepo) -> None:
    repo.tag("v1.2.3")
    repo.write("a.txt", "edited\n")
    info = read_git_info(repo.path)
    short = repo.git("rev-parse", "--short=7", "HEAD")
    assert info.dirty is True
    assert info.version == f"1.2.3+g{short}.dirty"


def test_untracked_file_is_dirty_but_an_ignored_one_is_not(repo: GitRepo) -> None:
    repo.tag("v1.2.3")
    repo.write("build/output.txt", "ignored\n")
    assert read_git_info(repo.path).dirty is False
    repo.write("new.txt", "untracked\n")
    assert read_git_info(repo.path).dirty is True


def test_no_tags_falls_back_with_a_warning_that_says_how_to_fix(repo: GitRepo) -> None:
    repo.commit("c1", file="a.txt")
    info = read_git_info(repo.path)
    short = repo.git("rev-parse", "--short=7", "HEAD")
    assert info.version == f"0.0.0.dev2+g{short}"
    assert info.tag is None
    assert len(info.warnings) == 1
    assert "no vX.Y.Z tag" in info.warnings[0]
    assert "git tag v0.1.0" in info.warnings[0]


def test_shallow_clone_warns_and_stays_deterministic(repo: GitRepo, tmp_path: Path) -> None:
    for number in range(4):
        repo.commit(f"c{number}", file="a.txt")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)], check=True
    )
    first = read_git_info(clone)
    short = repo.git("rev-parse", "--short=7", "HEAD")
    assert first.shallow is True
    assert first.version == f"0.0.0.dev0+g{short}"
    assert any("shallow clone" in w and "fetch-depth: 0" in w for w in first.warnings)
    assert read_git_info(clone).version == first.version


def test_shallow_clone_with_the_tag_still_finds_it(repo: GitRepo, tmp_path: Path) -> None:
    repo.tag("v3.1.0")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)], check=True
    )
    info = read_git_info(clone)
    assert info.version == "3.1.0"
    assert info.shallow is True
    assert any("shallow clone" in w for w in info.warnings)


def test_not_a_repository(tmp_path: Path) -> None:
    info = read_git_info(tmp_path)
    assert info.version == "0.0.0+unknown"
    assert "not in a git repository" in info.warnings[0]


def test_repository_without_commits(tmp_path: Path) -> None:
    init_repo(tmp_path / "empty")
    info = read_git_info(tmp_path / "empty")
    assert info.version == "0.0.0+unknown"
    assert "no commits" in info.warnings[0]
