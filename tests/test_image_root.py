"""The root-shaped trees of a build context (buildkit.deps.image_root, claude_code): the
directories an image's user owns, their parents and the files buildkit adds are all made
on the host with the commit's time, where the Dockerfiles copy them from."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest

from buildkit.config import ClaudeImage, load_project, parse_project
from buildkit.deps import claude_code
from buildkit.deps.image_root import USER_OWNED, add_user_dirs, check_user_dir
from buildkit.errors import ConfigError
from buildkit.proc import Runner
from tests.helpers import ROOT
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


def test_user_dirs_and_their_parents_come_from_the_context_at_the_commit_time(
    tmp_path: Path,
) -> None:
    platforms = ("linux/amd64", "linux/arm64")
    add_user_dirs(tmp_path, platforms, ("var/lib/orchestrator", "workspace"), MTIME)
    assert entries(tmp_path / USER_OWNED) == {
        "var": ("dir", 0o755, MTIME),
        "var/lib": ("dir", 0o755, MTIME),
        "var/lib/orchestrator": ("dir", 0o755, MTIME),
        "workspace": ("dir", 0o755, MTIME),
    }
    for root in (USER_OWNED, "linux-amd64", "linux-arm64"):  # copied to /: its time too
        assert int((tmp_path / root).stat().st_mtime) == MTIME
    for slug in ("linux-amd64", "linux-arm64"):  # the parents again, to be root's
        assert entries(tmp_path / slug) == {
            "var": ("dir", 0o755, MTIME),
            "var/lib": ("dir", 0o755, MTIME),
        }


def test_no_user_dirs_add_nothing(tmp_path: Path) -> None:
    add_user_dirs(tmp_path, ("linux/amd64",), (), MTIME)
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
