"""The root-shaped trees of a build context (buildkit.deps.image_root, claude_code): the
directories an image's user owns, their parents and the files buildkit adds are all made
on the host with the commit's time, where the Dockerfiles copy them from."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from buildkit.config import ClaudeImage, load_project, parse_project
from buildkit.deps import claude_code
from buildkit.deps.image_root import (
    USER_OWNED_TAR,
    add_user_dirs,
    check_dockerfile,
    check_user_dir,
    seal_trees,
)
from buildkit.errors import ConfigError
from buildkit.proc import Runner
from tests.helpers import ROOT, copy_fixture, run_buildkit
from tests.test_config import service_table

MTIME = 1_700_000_000


def entries(root: Path) -> dict[str, tuple[str, int, int]]:
    """Below `root`: path -> (kind, mode, mtime)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "file"
        found[path.relative_to(root).as_posix()] = (
            kind,
            stat.S_IMODE(info.st_mode),
            int(info.st_mtime),
        )
    return found


def test_the_repository_gives_the_state_and_agent_directories_to_the_user() -> None:
    project = load_project(ROOT)
    assert project.service("orchestrator").user_dirs == ("var/lib/orchestrator",)
    assert project.target("claude-code").user_dirs == ("home/agent", "workspace")
    assert project.service("toolman").user_dirs == ()


@pytest.mark.parametrize("value", ["var/lib/x", "/", "/var/../etc", "/var//lib", "/a/./b", ""])
def test_a_user_dir_must_be_an_absolute_normalised_path(value: str) -> None:
    with pytest.raises(ConfigError, match=r"services\.toolman\.user_dirs = .* not an absolute"):
        parse_project(ROOT, {"services": {"toolman": service_table(user_dirs=[value])}})


def test_a_user_dir_that_is_not_a_string_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"toolman\.user_dirs must be a list of absolute paths"):
        parse_project(ROOT, {"services": {"toolman": service_table(user_dirs=[7])}})


def test_a_trailing_slash_is_accepted() -> None:
    assert check_user_dir("/var/lib/x/", "where") == "var/lib/x"


def test_user_dirs_are_the_users_their_parents_roots_all_at_the_commit_time(
    tmp_path: Path,
) -> None:
    add_user_dirs(tmp_path, ("var/lib/orchestrator", "workspace", "var/lib/x/y"), MTIME)
    with tarfile.open(tmp_path / USER_OWNED_TAR) as tar:
        found = {m.name: (m.type, m.mode, m.mtime, m.uid, m.gid) for m in tar}
    root, user = (
        (tarfile.DIRTYPE, 0o755, MTIME, 0, 0),
        (tarfile.DIRTYPE, 0o755, MTIME, 10001, 10001),
    )
    assert found == {
        "var": root,
        "var/lib": root,
        "var/lib/orchestrator": user,
        "var/lib/x": root,
        "var/lib/x/y": user,
        "workspace": user,
    }
    assert int((tmp_path / USER_OWNED_TAR).stat().st_mtime) == MTIME


def test_the_user_dirs_tar_depends_on_nothing_but_its_dirs_and_time(tmp_path: Path) -> None:
    made = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        add_user_dirs(tmp_path / name, ("workspace", "home/agent"), MTIME)
        made.append((tmp_path / name / USER_OWNED_TAR).read_bytes())
    assert made[0] == made[1]


def test_a_user_dir_below_another_stays_the_users(tmp_path: Path) -> None:
    add_user_dirs(tmp_path, ("srv/app/cache", "srv/app"), MTIME)
    with tarfile.open(tmp_path / USER_OWNED_TAR) as tar:
        assert {m.name: m.uid for m in tar} == {"srv": 0, "srv/app": 10001, "srv/app/cache": 10001}


def test_no_user_dirs_add_nothing(tmp_path: Path) -> None:
    add_user_dirs(tmp_path, (), MTIME)
    assert list(tmp_path.iterdir()) == []


def npm_tarball(directory: Path, claude: ClaudeImage, npm_platform: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = directory / f"anthropic-ai-claude-code-{npm_platform}-{claude.version}.tgz"
    with tarfile.open(name, "w:gz") as archive:
        data = b"#!/bin/sh\necho claude\n"
        info = tarfile.TarInfo(claude_code.BINARY_IN_PACKAGE)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def test_claude_code_and_its_config_sit_in_each_platform_tree(tmp_path: Path) -> None:
    claude = load_project(ROOT).claude
    assert claude is not None
    cache = tmp_path / "cache"
    for npm_platform in ("linux-x64", "linux-arm64"):
        npm_tarball(cache / claude.version, claude, npm_platform)
    context = tmp_path / "context"
    claude_code.prepare(context, claude, ("linux/amd64", "linux/arm64"), cache=cache,
                        offline=True, runner=Runner(), mtime=MTIME)  # fmt: skip
    for slug in ("linux-amd64", "linux-arm64"):
        tree = entries(context / slug)
        assert tree == {
            "etc": ("dir", 0o755, MTIME),
            "etc/claude-code": ("dir", 0o755, MTIME),
            "etc/claude-code/mcp.json": ("file", 0o644, MTIME),
            "usr": ("dir", 0o755, MTIME),
            "usr/local": ("dir", 0o755, MTIME),
            "usr/local/bin": ("dir", 0o755, MTIME),
            "usr/local/bin/claude": ("file", 0o755, MTIME),
        }
        assert int((context / slug).stat().st_mtime) == MTIME
        config = json.loads((context / slug / "etc/claude-code/mcp.json").read_text())
        assert config["mcpServers"]["toolman"]["command"] == "mcp-wrapper"
    assert sorted(p.name for p in context.iterdir()) == ["linux-amd64", "linux-arm64"]


def context_with(root: Path, content: bytes, mtime: int) -> Path:
    """A prepared context: a Dockerfile and a platform tree holding one file."""
    (root / "linux-amd64" / "opt").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "linux-amd64" / "opt" / "f").write_bytes(content)
    for path in ("linux-amd64/opt/f", "linux-amd64/opt", "linux-amd64"):
        os.utime(root / path, (mtime, mtime))
    add_user_dirs(root, ("workspace",), mtime)
    return root


def test_sealed_trees_are_named_by_everything_in_them(tmp_path: Path) -> None:
    """The same trees get the same name; a change of content alone (same size and time),
    or of time alone, a new one: BuildKit then receives them whole."""
    names = {
        label: seal_trees(context_with(tmp_path / label, content, mtime), MTIME)
        for label, content, mtime in (
            ("first", b"one", MTIME),
            ("again", b"one", MTIME),
            ("edited", b"two", MTIME),
            ("later", b"one", MTIME + 1),
        )
    }
    assert names["first"] == names["again"]
    assert len({names["first"], names["edited"], names["later"]}) == 3
    first = tmp_path / "first"
    assert sorted(p.name for p in first.iterdir()) == ["Dockerfile", names["first"]]
    sealed = first / names["first"]
    assert sorted(p.name for p in sealed.iterdir()) == ["linux-amd64", USER_OWNED_TAR]
    for path in (sealed, sealed / "linux-amd64", sealed / "linux-amd64" / "opt"):
        assert int(path.stat().st_mtime) == MTIME


def test_a_dockerfile_that_does_not_copy_from_the_sealed_trees_is_refused(
    tmp_path: Path,
) -> None:
    dockerfile = tmp_path / "old.Dockerfile"
    dockerfile.write_text(
        "FROM scratch\n# copies ${IMAGE_TREES}? no: a comment\nARG TARGETOS\nARG TARGETARCH\n"
        "COPY ${TARGETOS}-${TARGETARCH}/ /\n"
    )
    with pytest.raises(
        ConfigError, match=r"old\.Dockerfile does not copy .* from \$\{IMAGE_TREES\}"
    ) as caught:
        check_dockerfile(dockerfile, (), "here")
    assert "ARG IMAGE_TREES" in (caught.value.hint or "")
    dockerfile.write_text("FROM scratch\nARG IMAGE_TREES\nCOPY ${IMAGE_TREES}/linux-amd64/ /\n")
    check_dockerfile(dockerfile, (), "here")  # accepted


def test_user_dirs_and_the_add_of_their_tar_go_together(tmp_path: Path) -> None:
    dockerfile = tmp_path / "x.Dockerfile"
    copy = "FROM scratch\nARG IMAGE_TREES\nCOPY ${IMAGE_TREES}/linux-amd64/ /\n"
    dockerfile.write_text(copy)
    with pytest.raises(ConfigError, match=r"does not ADD .*user-owned\.tar: the directories of "
                       r"\[x\]\.user_dirs \(/var/lib/x\) would be missing"):  # fmt: skip
        check_dockerfile(dockerfile, ("var/lib/x",), "[x]")
    dockerfile.write_text(copy + "ADD ${IMAGE_TREES}/user-owned.tar /\n")
    check_dockerfile(dockerfile, ("var/lib/x",), "[x]")  # accepted
    with pytest.raises(ConfigError, match=r"ADDs user-owned\.tar, but \[x\]\.user_dirs is empty"):
        check_dockerfile(dockerfile, (), "[x]")


def test_the_cli_names_the_dockerfile_and_the_table_before_building(tmp_path: Path) -> None:
    """A Dockerfile that dropped the ADD of its user's directories is refused at the start,
    naming the setting that lists them."""
    repo = copy_fixture("miniproject", tmp_path / "mini")
    dockerfile = repo.path / "dockerfiles" / "alpha.Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ADD ${IMAGE_TREES}/user-owned.tar /", ""))
    result = run_buildkit("images", "--services", "alpha", cwd=repo.path)
    assert result.returncode != 0
    assert (
        "alpha.Dockerfile does not ADD ${IMAGE_TREES}/user-owned.tar: the directories of "
        "tool.buildkit.services.alpha.user_dirs (/var/lib/alpha) would be missing"
    ) in result.stderr
    assert "hint: add `ADD ${IMAGE_TREES}/user-owned.tar /` after the COPY" in result.stderr
