"""A task's workspace as a tar archive: the cloned repository, then the task's files.

The Docker backend writes it into the workspace volume through the engine's archive API
(`PUT /containers/{id}/archive`), so the orchestrator needs no shared filesystem with
the engine — it works the same from its container, with only the engine socket.

The repository is cloned by a child process (clone.py: dulwich, pure-Python git — the
orchestrator image has no git binary, and dulwich never runs hooks or anything else from
the repository) into a scratch directory. `clone` below drives it: the child has its own
process group, killed as one when the launch is cancelled, when it has run for
`tasks.clone_timeout_seconds`, or when the directory it fills grows past
`tasks.max_workspace_bytes` (looked at every POLL_SECONDS) — a server that never
answers or a huge repository holds no slot and fills no disk beyond that.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, cast

from orchestrator.backends.base import LaunchCancelled, LaunchError, WorkspaceEntry
from orchestrator.backends.clone import PREFIX
from orchestrator.tasks.model import Repository

OWNER = 10001  # the images' non-root user: it must own what the agent is to change
SPOOL_BYTES = 8 << 20
POLL_SECONDS = 0.5  # how often a running clone's size is looked at
STDERR_BYTES = 16 << 10  # what is kept of the clone process's stderr
STDERR_WAIT_SECONDS = 5.0
LINE_CHARS = 500


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


async def cloned_archive(
    repository: Repository | None,
    entries: Iterable[WorkspaceEntry],
    *,
    max_bytes: int,
    clone_timeout: float,
    cancel: asyncio.Event,
    credentials: tuple[str, str] | None = None,
    uid: int = OWNER,
) -> BinaryIO:
    """The workspace's archive: the clone (if any) into a scratch directory, then the tar."""
    if repository is None:
        return await asyncio.to_thread(archive, entries, uid=uid)
    scratch = Path(tempfile.mkdtemp(prefix="orchestrator-clone-"))
    try:
        tree = scratch / "repo"
        await clone(
            repository,
            tree,
            max_bytes=max_bytes,
            timeout=clone_timeout,
            cancel=cancel,
            credentials=credentials,
        )
        return await asyncio.to_thread(archive, entries, uid=uid, tree=tree)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


async def clone(
    repository: Repository,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    cancel: asyncio.Event,
    credentials: tuple[str, str] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Clone into `dest` (which must not exist) in a child process (clone.py), killed with
    its process group on `cancel` (LaunchCancelled), after `timeout` seconds or once
    `dest` holds more than `max_bytes` (LaunchError: why, and the setting to change)."""
    url = repository.url
    if cancel.is_set():
        raise LaunchCancelled("cancelled before the clone started")
    argv = [sys.executable, "-P", "-m", "orchestrator.backends.clone"]
    if repository.branch is not None:
        argv.append(f"--branch={repository.branch}")
    if repository.commit is not None:
        argv.append(f"--commit={repository.commit}")
    argv += ["--", url, str(dest)]
    try:
        child = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as one
        )
    except OSError as exc:
        raise LaunchError(f"cloning {url} failed: the clone process did not start: {exc}") from exc
    stderr = asyncio.ensure_future(_tail(child))
    try:
        await _send_credentials(child, credentials)
        await _supervise(
            child,
            url=url,
            dest=dest,
            max_bytes=max_bytes,
            timeout=timeout,
            cancel=cancel,
            poll_seconds=poll_seconds,
        )
        if child.returncode != 0:
            # EOF comes with its exit, unless something it started holds the pipe: bounded.
            await asyncio.wait({stderr}, timeout=STDERR_WAIT_SECONDS)
            said = stderr.result() if stderr.done() else b""
            raise LaunchError(f"cloning {url} failed: {_why(child, said)}")
    finally:
        if child.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        await child.wait()
        stderr.cancel()


async def _supervise(
    child: asyncio.subprocess.Process,
    *,
    url: str,
    dest: Path,
    max_bytes: int,
    timeout: float,
    cancel: asyncio.Event,
    poll_seconds: float,
) -> None:
    """Until the child exits (then its clone's size is checked once more), or a reason
    to stop it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    exited = asyncio.ensure_future(child.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0 and not exited.done():
                raise LaunchError(
                    f"cloning {url} failed: not done after {timeout:g} s "
                    "(the orchestrator's tasks.clone_timeout_seconds); is the server answering?"
                )
            await asyncio.wait(
                {exited, cancelled},
                timeout=max(0.0, min(poll_seconds, left)),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if cancel.is_set():
                raise LaunchCancelled(f"cancelled while cloning {url}")
            size = await asyncio.to_thread(tree_bytes, dest)
            if size > max_bytes:
                raise LaunchError(
                    f"cloning {url} failed: the clone reached {size} bytes, more than the "
                    f"orchestrator's tasks.max_workspace_bytes ({max_bytes})"
                )
            if exited.done():
                return
    finally:
        exited.cancel()
        cancelled.cancel()


async def _send_credentials(
    child: asyncio.subprocess.Process, credentials: tuple[str, str] | None
) -> None:
    """Write them on the child's stdin (never argv) and close it: an empty stdin is none."""
    assert child.stdin is not None
    with suppress(BrokenPipeError, ConnectionResetError):  # it died early: its exit says why
        if credentials is not None:
            username, password = credentials
            child.stdin.write(json.dumps({"username": username, "password": password}).encode())
            await child.stdin.drain()
        child.stdin.close()
        await child.stdin.wait_closed()


async def _tail(child: asyncio.subprocess.Process) -> bytes:
    """The child's stderr, its last STDERR_BYTES."""
    assert child.stderr is not None
    kept = b""
    while chunk := await child.stderr.read(65536):
        kept = (kept + chunk)[-STDERR_BYTES:]
    return kept


def _why(child: asyncio.subprocess.Process, stderr: bytes) -> str:
    """The child's `error: ` line, else its last words, else how it ended."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    marked = [line.removeprefix(PREFIX) for line in lines if line.startswith(PREFIX)]
    lines = marked or [line for line in lines if line]
    if lines:
        return lines[-1][:LINE_CHARS]
    if child.returncode is not None and child.returncode < 0:
        return f"the clone process was killed by signal {-child.returncode}"
    return f"the clone process exited with code {child.returncode}"


def tree_bytes(root: Path) -> int:
    """The sizes of the regular files under `root` (symlinks not followed); files that
    vanish while it looks (dulwich renames its temporary packs) are skipped."""
    total = 0
    pending = [str(root)]
    while pending:
        with suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
    return total
