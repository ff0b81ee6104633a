"""The parts of a build context an image's filesystem is made of, built on the host so that
every directory and file in the image's layers carries the commit's time, never the time a
builder created it at (which would make two builds of one commit differ):

    <os>-<arch>/       copied to `/`, root's: the install tree (opt/<image>/) and the files
                       buildkit adds (usr/local/bin/claude, ...), parents included
    user-owned.tar     added to `/` (ADD unpacks a local tar, owners and times as the tar
                       says, with both builders): the directories the image's user owns
                       (`user_dirs`, e.g. var/lib/orchestrator/, empty) as USER_ID's, their
                       parents (var/, var/lib/) as root's

A tar rather than `COPY --chown`: a chown applies to every directory the COPY passes, the
parents too, and a second COPY to give those back to root would have to come after it. With
the large install tree's layer on top of a small one, BuildKit's registry cache served the
large layer to another builder only when the small one was new to the exporting builder
(its cache records chain from the step before), so the install tree is copied first.

All of them then move into `trees-<digest>/` (`seal_trees`), which the Dockerfile names
through the `IMAGE_TREES` build argument: BuildKit must never see changed trees at a path it
has seen before.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from buildkit.errors import ConfigError

USER_OWNED_TAR = "user-owned.tar"
USER_ID = 10001  # the images' USER (dockerfiles/*.Dockerfile)
DIRECTORY_MODE = 0o755


def check_user_dir(value: str, where: str) -> str:
    """`value` as a path below the image's root (no leading slash), or a ConfigError."""
    path = PurePosixPath(value)
    parts = path.parts[1:] if path.is_absolute() else ()
    if not parts or any(part in (".", "..") for part in parts) or str(path) != value.rstrip("/"):
        raise ConfigError(
            f"{where} = {value!r} is not an absolute, normalised directory below /",
            hint='e.g. user_dirs = ["/var/lib/orchestrator"]',
        )
    return "/".join(parts)


def make_dirs(root: Path, relative: str, mtime: int) -> Path:
    """root/relative and every directory up to root, included: mode 0755, time `mtime`."""
    target = root.joinpath(*relative.split("/"))
    target.mkdir(parents=True, exist_ok=True)
    stamp_parents(root, target, mtime)
    return target


def stamp_parents(root: Path, path: Path, mtime: int) -> None:
    """`path` and each directory from it up to `root`, included (adding an entry changed
    each one's time): a directory gets mode 0755, everything time `mtime`."""
    current = path
    while True:
        if current.is_dir() and not current.is_symlink():
            current.chmod(DIRECTORY_MODE)
        os.utime(current, (mtime, mtime), follow_symlinks=False)
        if current == root:
            return
        current = current.parent


def add_user_dirs(context: Path, user_dirs: Iterable[str], mtime: int) -> None:
    """`user-owned.tar` in `context`: each of `user_dirs` (paths below /, no leading slash)
    as USER_ID's, each parent as root's, every one mode 0755 and time `mtime`; nothing
    when there are none. The tar's bytes depend on nothing else."""
    owned: dict[str, int] = {}
    for relative in user_dirs:
        path = PurePosixPath(relative)
        for parent in reversed(path.parents[:-1]):  # not "."
            owned.setdefault(str(parent), 0)
        owned[str(path)] = USER_ID
    if not owned:
        return
    tar_path = context / USER_OWNED_TAR
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(owned):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, DIRECTORY_MODE, mtime
            entry.uid = entry.gid = owned[name]
            tar.addfile(entry)
    os.utime(tar_path, (mtime, mtime))


TREES_ARG = "IMAGE_TREES"
TREES_PREFIX = "trees-"
CONTEXT_FILES = ("Dockerfile", ".dockerignore")


def seal_trees(context: Path, mtime: int) -> str:
    """Move what the context holds for the image's filesystem (`<os>-<arch>/`,
    `user-owned.tar`: all but the Dockerfile and .dockerignore) into `trees-<digest>/`, the
    digest of everything in them (paths, kinds, modes, times, contents), and return that
    directory's name: the Dockerfile copies from it through the `IMAGE_TREES` build
    argument.

    Why a new path whenever anything in the trees changes: BuildKit keeps the last context
    each builder received and sends only what changed, and it judges a file unchanged by
    its size and time, a directory by its mode and owner alone. So a directory whose only
    change is its time keeps an earlier build's time, a directory holding a changed file
    gets the time of the transfer, and a file edited to the same size under a fixed
    SOURCE_DATE_EPOCH keeps its old content. Under a path it has never seen, BuildKit
    receives the whole tree as it is (tests/test_buildx_context.py shows all three)."""
    trees = sorted(p for p in context.iterdir() if p.name not in CONTEXT_FILES)
    digest = hashlib.sha256()
    for tree in trees:
        below = sorted(tree.rglob("*")) if tree.is_dir() and not tree.is_symlink() else []
        for path in [tree, *below]:
            digest.update(entry_record(context, path))
    sealed = context / f"{TREES_PREFIX}{digest.hexdigest()[:16]}"
    sealed.mkdir()
    for tree in trees:
        moved = tree.rename(sealed / tree.name)
        # a directory moved to another parent gets a new time on some file systems
        os.utime(moved, (mtime, mtime), follow_symlinks=False)
    os.utime(sealed, (mtime, mtime))
    return sealed.name


def entry_record(root: Path, path: Path) -> bytes:
    """What identifies `path` in a tree: its name below `root`, kind, mode, time and
    content (a symlink's target)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        content = os.readlink(path).encode()
    elif stat.S_ISREG(info.st_mode):
        with path.open("rb") as file:
            content = hashlib.file_digest(file, "sha256").digest()
    else:
        content = b""
    name = path.relative_to(root).as_posix().encode()
    return b"\0".join((name, b"%o %d" % (info.st_mode, info.st_mtime_ns), content, b"\n"))


def check_dockerfile(dockerfile: Path, user_dirs: Sequence[str], where: str) -> None:
    """A ConfigError unless `dockerfile` copies from `${IMAGE_TREES}` (an older Dockerfile
    copying `<os>-<arch>/` from the context's top would fail later with a path not found)
    and ADDs `user-owned.tar` exactly when `user_dirs` (at `where`) lists directories."""
    if not dockerfile.is_file():
        return
    lines = dockerfile.read_text().splitlines()
    instructions = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    if TREES_ARG not in instructions:
        raise ConfigError(
            f"{dockerfile} does not copy the image's trees from ${{{TREES_ARG}}}",
            hint=f"declare `ARG {TREES_ARG}` and copy `${{{TREES_ARG}}}/${{TARGETOS}}-"
            f"${{TARGETARCH}}/ /` (then ADD `${{{TREES_ARG}}}/{USER_OWNED_TAR} /` if it has "
            "user_dirs), as dockerfiles/*.Dockerfile do",
        )
    adds = USER_OWNED_TAR in instructions
    if user_dirs and not adds:
        raise ConfigError(
            f"{dockerfile} does not ADD ${{{TREES_ARG}}}/{USER_OWNED_TAR}: the directories "
            f"of {where}.user_dirs ({', '.join('/' + d for d in user_dirs)}) would be missing",
            hint=f"add `ADD ${{{TREES_ARG}}}/{USER_OWNED_TAR} /` after the COPY of the tree",
        )
    if adds and not user_dirs:
        raise ConfigError(
            f"{dockerfile} ADDs {USER_OWNED_TAR}, but {where}.user_dirs is empty: "
            "buildkit makes that file only for the directories listed there",
            hint=f"list them in {where}.user_dirs, or drop the ADD",
        )
