"""The parts of a build context shaped like the image's root, so that every directory a
`COPY` puts in a layer comes from the context with the commit's time, never with the time
the builder created it at (which would make two builds of one commit differ):

    <os>-<arch>/      copied to `/` as root: the install tree (opt/<image>/), the files
                      buildkit adds (usr/local/bin/claude, ...) and the parents of
                      every directory below
    user-owned/       copied to `/` first, `--chown` to the image's user: the directories
                      that user owns (`user_dirs`, e.g. var/lib/orchestrator/), empty

A `COPY --chown` gives the parents of what it copies (var/, var/lib/) the user too, and a
builder that creates a directory changes its parent's time: so the Dockerfile copies
`user-owned/` first and the platform's tree after it, which holds those parents again,
root's, with the commit's time. Both builders (the classic one and BuildKit) set an existing
directory's owner, mode and time from the context when a `COPY` of a tree reaches it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from buildkit.deps.wheelhouse import platform_slug
from buildkit.errors import ConfigError

USER_OWNED = "user-owned"
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


def add_user_dirs(
    context: Path, platforms: Sequence[str], user_dirs: Iterable[str], mtime: int
) -> None:
    """`user-owned/<dir>/` for each of `user_dirs` (paths below /, no leading slash), and
    its parents in each platform's tree `<os>-<arch>/`, all at `mtime`."""
    dirs = list(user_dirs)
    if not dirs:
        return
    owned = context / USER_OWNED
    owned.mkdir(exist_ok=True)
    for relative in dirs:
        make_dirs(owned, relative, mtime)
        parent = PurePosixPath(relative).parent
        for platform in platforms:
            if parent.parts:
                make_dirs(context / platform_slug(platform), str(parent), mtime)
