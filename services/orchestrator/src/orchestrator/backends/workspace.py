"""A task's workspace as a tar archive: the cloned repository, then the task's files.

The Docker backend writes it into the workspace volume through the engine's archive API
(`PUT /containers/{id}/archive`), so the orchestrator needs no shared filesystem with
the engine — it works the same from its container, with only the engine socket.

The repository is cloned with dulwich (pure-Python git): the orchestrator image has no
git binary, and dulwich never runs hooks or anything else from the repository.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, cast

from orchestrator.backends.base import LaunchError, WorkspaceEntry
from orchestrator.tasks.model import Repository

OWNER = 10001  # the images' non-root user: it must own what the agent is to change
SPOOL_BYTES = 8 << 20


def archive(
    entries: Iterable[WorkspaceEntry], *, uid: int = OWNER, tree: Path | None = None
) -> BinaryIO:
    """A tar of `tree` (a checkout, `.git` included) and then `entries`, owned by `uid`:
    in memory while small, on disk beyond SPOOL_BYTES (a clone may be large)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen: set[str] = set()
        if tree is not None:
            for path in sorted(tree.rglob("*")):
                name = path.relative_to(tree).as_posix()
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid = info.gid = uid
                info.uname = info.gname = ""
                seen.add(name)
                if info.isreg():
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
        for entry in entries:
            for parent in reversed(Path(entry.path).parents[:-1]):
                _add_dir(tar, parent.as_posix(), uid, seen)
            info = tarfile.TarInfo(entry.path)
            info.size = len(entry.data)
            info.mode = 0o755 if entry.executable else 0o644
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(entry.data))
    spool.seek(0)
    return cast(BinaryIO, spool)


def _add_dir(tar: tarfile.TarFile, name: str, uid: int, seen: set[str]) -> None:
    if name in seen:
        return
    seen.add(name)
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.uid = info.gid = uid
    tar.addfile(info)


def single_file(name: str, data: bytes, *, uid: int, dir_mode: int, file_mode: int) -> bytes:
    """A tar of one file and its directories (`name` is relative to where it is put)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        parts = Path(name)
        for parent in reversed(parts.parents[:-1]):
            info = tarfile.TarInfo(parent.as_posix())
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, dir_mode, uid, uid
            tar.addfile(info)
        info = tarfile.TarInfo(parts.as_posix())
        info.size, info.mode, info.uid, info.gid = len(data), file_mode, uid, uid
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def clone(repository: Repository, target: Path, *, max_bytes: int) -> None:
    """Clone into `target` and check out the branch or commit; LaunchError says why not."""
    from dulwich import porcelain
    from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

    branch = repository.branch.encode() if repository.branch else None
    try:
        with open(os.devnull, "wb") as quiet:
            repo = porcelain.clone(
                repository.url,
                str(target),
                branch=branch,
                checkout=repository.commit is None,
                errstream=quiet,
            )
        if repository.commit is not None:
            _checkout_commit(repo, repository.commit)
        repo.close()
    except (GitProtocolError, HangupException, NotGitRepository, OSError, KeyError) as exc:
        raise LaunchError(f"cloning {repository.url} failed: {_explain(exc)}") from exc
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    if size > max_bytes:
        raise LaunchError(
            f"the clone of {repository.url} is {size} bytes, more than the orchestrator's "
            f"tasks.max_workspace_bytes ({max_bytes})"
        )


def _checkout_commit(repo: object, commit: str) -> None:
    from dulwich import porcelain
    from dulwich.repo import Repo

    assert isinstance(repo, Repo)
    matches = [sha for sha in repo.object_store if sha.decode().startswith(commit)]
    if not matches:
        raise KeyError(f"commit {commit} is not in the repository")
    if len(matches) > 1:
        raise KeyError(f"commit {commit} is ambiguous; give more digits")
    porcelain.reset(repo, "hard", matches[0])


def _explain(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def cloned_archive(
    repository: Repository | None,
    entries: Iterable[WorkspaceEntry],
    *,
    max_bytes: int,
    uid: int = OWNER,
) -> BinaryIO:
    if repository is None:
        return archive(entries, uid=uid)
    with tempfile.TemporaryDirectory(prefix="orchestrator-clone-") as scratch:
        tree = Path(scratch) / "repo"
        clone(repository, tree, max_bytes=max_bytes)
        return archive(entries, uid=uid, tree=tree)
