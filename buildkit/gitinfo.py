"""Version and provenance from git (GitPython): commit, dirty flag, tag, PEP 440 version.

Version rules (the same scheme setuptools-scm uses, made deterministic):
    on tag v1.2.3, clean        -> 1.2.3
    3 commits after v1.2.3      -> 1.2.4.dev3+gabc1234
    3 commits after v1.3.0-rc.1 -> 1.3.0rc2.dev3+gabc1234
    uncommitted changes         -> local label gets ".dirty" (1.2.3+gabc1234.dirty)
    no reachable tag            -> 0.0.0.devN+gabc1234, with a warning saying how to fix it
    shallow clone, no tag       -> 0.0.0.dev0+gabc1234 (history length is unknown), warning
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import git
from packaging.version import InvalidVersion, Version

SEMVER_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z][0-9A-Za-z.-]*))?$")
MAX_TAG_PROBES = 50
UNKNOWN_VERSION = "0.0.0+unknown"
FIX_SHALLOW = (
    "fetch full history and tags: `git fetch --unshallow --tags` "
    "(GitHub Actions: actions/checkout with `fetch-depth: 0`)"
)


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool
    tag: str | None
    distance: int
    version: str
    shallow: bool = False
    warnings: tuple[str, ...] = field(default=())
    commit_time: str = ""  # ISO 8601, UTC

    @property
    def short(self) -> str:
        return self.commit[:7]


def tag_version(tag: str) -> Version | None:
    """The PEP 440 version of a `vX.Y.Z[-pre]` tag, or None when it is not one."""
    if not SEMVER_TAG.match(tag):
        return None
    try:
        return Version(tag[1:])
    except InvalidVersion:
        return None


def next_version(base: Version) -> str:
    if base.pre is not None:
        kind, number = base.pre
        return f"{base.base_version}{kind}{number + 1}"
    major, minor, micro = [*base.release, 0, 0, 0][:3]
    return f"{major}.{minor}.{micro + 1}"


def format_version(base: Version | None, distance: int, short: str, dirty: bool) -> str:
    suffix = ".dirty" if dirty else ""
    if base is not None and distance == 0:
        return f"{base}+g{short}{suffix}" if dirty else str(base)
    public = f"{next_version(base)}.dev{distance}" if base else f"0.0.0.dev{distance}"
    return f"{public}+g{short}{suffix}"


def read_git_info(path: Path) -> GitInfo:
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitInfo(
            commit="",
            dirty=False,
            tag=None,
            distance=0,
            version=UNKNOWN_VERSION,
            warnings=(
                f"{path} is not in a git repository: version is {UNKNOWN_VERSION}; "
                "build from a git clone to get a real version",
            ),
        )
    with repo:
        return _describe(repo)


def _describe(repo: git.Repo) -> GitInfo:
    warnings: list[str] = []
    try:
        commit = repo.head.commit.hexsha
    except ValueError:
        return GitInfo(
            commit="",
            dirty=True,
            tag=None,
            distance=0,
            version=UNKNOWN_VERSION,
            warnings=(
                f"the repository has no commits: version is {UNKNOWN_VERSION}; commit first",
            ),
        )
    dirty = repo.is_dirty(untracked_files=True)
    shallow = (Path(repo.git_dir) / "shallow").exists()
    if shallow:
        warnings.append(f"shallow clone: tags and history may be missing; {FIX_SHALLOW}")
    tag, distance = _nearest_tag(repo)
    base = tag_version(tag) if tag else None
    if tag is None:
        distance = 0 if shallow else int(repo.git.rev_list("--count", "HEAD"))
        warnings.append(
            f"no vX.Y.Z tag is reachable from HEAD: version falls back to "
            f"{format_version(None, distance, commit[:7], dirty)}; tag a release "
            "(`git tag v0.1.0`) or fetch tags (`git fetch --tags`)"
        )
    version = format_version(base, distance, commit[:7], dirty)
    committed = repo.head.commit.committed_datetime.astimezone(UTC).isoformat(timespec="seconds")
    return GitInfo(commit, dirty, tag, distance, version, shallow, tuple(warnings), committed)


def _nearest_tag(repo: git.Repo) -> tuple[str | None, int]:
    """The nearest reachable semver tag and the number of commits since it."""
    excluded: list[str] = []
    for _ in range(MAX_TAG_PROBES):
        args = ["--tags", "--long", "--match", "v[0-9]*"]
        for name in excluded:
            args += ["--exclude", name]
        try:
            described = repo.git.describe(*args, "HEAD")
        except git.GitCommandError:
            return None, 0
        name, count, _ = described.rsplit("-", 2)
        if tag_version(name) is None:
            excluded.append(name)
            continue
        # Several tags on one commit (v1.0.0-rc.2 and v1.0.0): the highest version wins.
        siblings = repo.git.tag("--points-at", f"{name}^{{commit}}").split()
        best = max(
            (tag for tag in siblings if tag_version(tag) is not None),
            key=lambda tag: tag_version(tag) or Version("0"),
            default=name,
        )
        return best, int(count)
    return None, 0
