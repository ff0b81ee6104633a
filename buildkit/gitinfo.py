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

from buildkit.errors import GitError

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
    workdir: Path | None = None
    changed: tuple[str, ...] = ()  # paths (relative to workdir) that differ from HEAD

    @property
    def short(self) -> str:
        return self.commit[:7]

    def is_dirty(self, path: Path) -> bool:
        """Whether anything under `path` differs from HEAD (untracked files included)."""
        if self.workdir is None:
            return self.dirty
        try:
            prefix = path.resolve().relative_to(self.workdir).as_posix()
        except ValueError:
            return self.dirty
        if prefix in ("", "."):
            return self.dirty
        return any(name == prefix or name.startswith(prefix + "/") for name in self.changed)

    def version_for(self, path: Path) -> str:
        """The version of what is built from `path`: `.dirty` only when `path` changed.

        One edited service then leaves the others' wheels, and so their images, as they were.
        """
        if not self.commit:
            return self.version
        return format_version(
            tag_version(self.tag) if self.tag else None,
            self.distance,
            self.short,
            self.is_dirty(path),
        )


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
    changed = changed_paths(repo)
    dirty = bool(changed)
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
    return GitInfo(
        commit,
        dirty,
        tag,
        distance,
        version,
        shallow,
        tuple(warnings),
        committed,
        Path(repo.working_dir).resolve(),
        changed,
    )


def source_files(root: Path, path: Path) -> list[Path]:
    """The files under `path` as git sees them: tracked, plus untracked ones not ignored.
    Outside a git repository, every file below `path` but caches and hidden ones."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts
            )
        )
    with repo:
        listed = repo.git.ls_files("-co", "--exclude-standard", "-z", "--", str(path))
        workdir = Path(repo.working_dir)
    return sorted(workdir / name for name in listed.split("\0") if name)


def changed_since(root: Path, ref: str) -> tuple[Path, list[str]]:
    """The repository's top directory and the files (relative to it) that differ from
    `ref`: committed since, staged, modified, deleted, or untracked-not-ignored."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(f"{root} is not in a git repository; --changed-since needs one") from exc
    with repo:
        try:
            repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
        except git.GitCommandError:
            raise GitError(
                f"--changed-since {ref!r} is not a commit in this repository",
                hint="fetch it first (e.g. `git fetch origin main`, or actions/checkout with "
                "fetch-depth: 0) or name another ref",
            ) from None
        diff = repo.git.diff("--name-only", "-z", ref, "--").split("\0")
        untracked = repo.git.ls_files("-o", "--exclude-standard", "-z").split("\0")
        workdir = Path(repo.working_dir).resolve()
    return workdir, sorted({name for name in (*diff, *untracked) if name})


def changed_paths(repo: git.Repo) -> tuple[str, ...]:
    """Files that differ from HEAD: modified, staged, deleted, renamed, or untracked."""
    entries = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all").split("\0")
    names: list[str] = []
    skip_next = False
    for entry in entries:
        if skip_next:  # the original name of a rename
            skip_next = False
            names.append(entry)
            continue
        if len(entry) > 3:
            names.append(entry[3:])
            skip_next = entry[0] in "RC"
    return tuple(sorted(set(names)))


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
