"""A task's repository clone (backends/clone.py, the child; workspace.clone, its driver)
against real git: repositories made with the git CLI, served by `git daemon` (git://) and
by dulwich's smart HTTP server behind basic auth, on loopback. A loopback server that
accepts and never answers stands for a stuck host: the clone is killed on the deadline,
on cancel, or once its directory grows past the limit, and no process is left."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from conftest import eventually, free_port, require
from git_servers import (
    PASSWORD,
    USER,
    Served,
    SilentServer,
    clone_processes,
    git,
    serve_repositories,
    silent_server,
)

from orchestrator.backends import workspace
from orchestrator.backends.base import LaunchCancelled, LaunchError, WorkspaceEntry
from orchestrator.tasks.model import Repository

pytestmark = pytest.mark.anyio

WAIT = 30.0  # the bound of every wait here


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")
    with serve_repositories(tmp_path_factory.mktemp("served")) as served:
        yield served


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with silent_server() as server:
        yield server


async def until(check: Callable[[], object], what: str) -> None:
    async def probe() -> bool:
        return bool(check())

    await eventually(probe, timeout=WAIT, what=what)


async def clone(
    repository: Repository,
    dest: Path,
    *,
    max_bytes: int = 1 << 30,
    timeout: float = WAIT,
    cancel: asyncio.Event | None = None,
    credentials: tuple[str, str] | None = None,
) -> None:
    with anyio.fail_after(WAIT * 2):
        await workspace.clone(
            repository,
            dest,
            max_bytes=max_bytes,
            timeout=timeout,
            cancel=cancel or asyncio.Event(),
            credentials=credentials,
        )


async def failure(repository: Repository, dest: Path, **options: object) -> str:
    with pytest.raises(LaunchError) as raised:
        await clone(repository, dest, **options)  # type: ignore[arg-type]
    return str(raised.value)


def reached(reason: str) -> int:
    """The size a reason names: `... the clone reached N bytes, ...`."""
    return int(reason.split("the clone reached ")[1].split(" bytes", maxsplit=1)[0])


# -- what is cloned ----------------------------------------------------------------------


async def test_a_branch_is_cloned_and_checked_out(served: Served, tmp_path: Path) -> None:
    await clone(Repository(url=f"{served.git}/project.git", branch="feature"), tmp_path / "r")
    assert (tmp_path / "r" / "feature.txt").read_text() == "feature\n"
    assert not (tmp_path / "r" / "only-later.txt").exists()
    assert git(tmp_path / "r", "symbolic-ref", "HEAD") == "refs/heads/feature"


async def test_a_commit_is_checked_out_on_a_detached_head(served: Served, tmp_path: Path) -> None:
    dest = tmp_path / "r"
    await clone(Repository(url=f"{served.git}/project.git", commit=served.first[:7]), dest)
    assert (dest / "README.md").read_text() == "first\n"
    assert not (dest / "only-later.txt").exists()
    assert (dest / ".git" / "HEAD").read_text().strip() == served.first  # detached
    assert git(dest, "rev-parse", "main") == served.main  # the branch is not moved
    assert git(dest, "status", "--porcelain") == ""  # the index matches the tree


@pytest.mark.parametrize("which", ["unknown", "a tree, not a commit"])
async def test_a_commit_that_is_not_there_is_named(
    served: Served, tmp_path: Path, which: str
) -> None:
    url = f"{served.git}/project.git"
    commit = "0000000" if which == "unknown" else served.tree[:10]
    reason = await failure(Repository(url=url, commit=commit), tmp_path / "r")
    assert reason.startswith(f"cloning {url} failed: commit {commit} does not exist in {url}")


async def test_a_branch_that_is_not_there_is_named(served: Served, tmp_path: Path) -> None:
    url = f"{served.git}/project.git"
    reason = await failure(Repository(url=url, branch="nope"), tmp_path / "r")
    assert reason == f"cloning {url} failed: branch 'nope' does not exist in {url}"


async def test_failures_say_why(served: Served, tmp_path: Path) -> None:
    refused = f"git://127.0.0.1:{free_port()}/project.git"
    cases = {
        f"{served.git}/missing.git": "no git repository there",
        f"{served.http}/missing.git": "the server asks for credentials (401) and none were given",
        refused: "cannot reach the server: Connection refused",
        refused.replace("git://", "http://"): "cannot reach the server: Connection refused",
    }
    for index, (url, why) in enumerate(cases.items()):
        reason = await failure(Repository(url=url), tmp_path / str(index))
        assert reason.startswith(f"cloning {url} failed: {why}"), reason
    url = f"{served.http}/missing.git"
    reason = await failure(Repository(url=url), tmp_path / "h", credentials=(USER, PASSWORD))
    assert reason.startswith(f"cloning {url} failed: no git repository there"), reason


async def test_http_credentials_are_used_and_a_refusal_is_named(
    served: Served, tmp_path: Path
) -> None:
    url = f"{served.http}/project.git"
    await clone(Repository(url=url), tmp_path / "r", credentials=(USER, PASSWORD))
    assert (tmp_path / "r" / "only-later.txt").read_text() == "later\n"
    assert PASSWORD not in (tmp_path / "r" / ".git" / "config").read_text()  # the agent's
    reason = await failure(Repository(url=url), tmp_path / "x", credentials=(USER, "wrong-pw"))
    assert reason == f"cloning {url} failed: the server refused the credentials (401)"


async def test_the_credentials_travel_on_stdin_not_in_argv(
    silent: SilentServer, tmp_path: Path
) -> None:
    url, cancel = f"http://127.0.0.1:{silent.port}/r.git", asyncio.Event()
    sent = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    running = asyncio.create_task(
        clone(Repository(url=url), tmp_path / "r", cancel=cancel, credentials=(USER, PASSWORD))
    )
    await until(lambda: sent in silent.received, "the request with the credentials")
    (pid,) = clone_processes(url)
    assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert PASSWORD.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
    cancel.set()
    with pytest.raises(LaunchCancelled):
        await running
    await until(lambda: silent.closed.is_set() and not clone_processes(url), "the clone gone")


# -- bounded: the deadline, cancel, the size ----------------------------------------------


async def test_a_server_that_never_answers_is_given_up_on_the_deadline(
    silent: SilentServer, tmp_path: Path
) -> None:
    url = f"git://127.0.0.1:{silent.port}/r.git"
    # long enough for git to start and connect on a loaded 2-core machine (seen: over 1 s),
    # so the deadline is the server's silence, not git's start-up
    reason = await failure(Repository(url=url), tmp_path / "r", timeout=3.0)
    assert reason.startswith(f"cloning {url} failed: not done after 3 s")
    assert "tasks.clone_timeout_seconds" in reason
    assert silent.connected.is_set()
    await until(silent.closed.is_set, "the killed clone's connection to close")
    assert clone_processes(url) == []


async def test_cancel_kills_a_hanging_clone(silent: SilentServer, tmp_path: Path) -> None:
    url, cancel = f"git://127.0.0.1:{silent.port}/r.git", asyncio.Event()
    running = asyncio.create_task(clone(Repository(url=url), tmp_path / "r", cancel=cancel))
    await until(silent.connected.is_set, "the clone to connect")
    (pid,) = clone_processes(url)
    assert os.getpgid(pid) == pid  # a process group of its own
    cancel.set()
    with pytest.raises(LaunchCancelled):
        await running
    await until(silent.closed.is_set, "the killed clone's connection to close")
    assert clone_processes(url) == []


async def test_a_cancelled_launch_kills_its_clone(silent: SilentServer, tmp_path: Path) -> None:
    """The orchestrator shutting down cancels its launches: their clones go with them."""
    url = f"git://127.0.0.1:{silent.port}/r.git"
    running = asyncio.create_task(clone(Repository(url=url), tmp_path / "r"))
    await until(silent.connected.is_set, "the clone to connect")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await until(silent.closed.is_set, "the killed clone's connection to close")
    assert clone_processes(url) == []


async def test_a_repository_larger_than_the_limit_fails_naming_its_size(
    served: Served, tmp_path: Path
) -> None:
    url = f"{served.git}/big.git"
    reason = await failure(Repository(url=url), tmp_path / "r", max_bytes=1 << 20)
    assert reason.startswith(f"cloning {url} failed: the clone reached ")
    assert reached(reason) > 1 << 20
    assert reason.endswith("more than the orchestrator's tasks.max_workspace_bytes (1048576)")


async def test_a_clone_that_grows_past_the_limit_is_killed_while_it_runs(
    silent: SilentServer, tmp_path: Path
) -> None:
    url, dest = f"git://127.0.0.1:{silent.port}/r.git", tmp_path / "r"
    running = asyncio.create_task(clone(Repository(url=url), dest, max_bytes=4096))
    await until(silent.connected.is_set, "the clone to connect")
    (dest / "grown.bin").write_bytes(b"x" * 8192)  # as a fetched pack would
    with pytest.raises(LaunchError) as raised:
        await running
    assert reached(str(raised.value)) >= 8192
    assert "tasks.max_workspace_bytes (4096)" in str(raised.value)
    await until(silent.closed.is_set, "the killed clone's connection to close")
    assert clone_processes(url) == []


# -- the archive -------------------------------------------------------------------------


async def test_the_archive_holds_the_clone_then_the_files_and_no_scratch_is_left(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    files = (WorkspaceEntry("README.md", b"the task's\n"), WorkspaceEntry("notes/n.md", b"n"))
    archive = await workspace.cloned_archive(
        Repository(url=f"{served.git}/project.git"),
        files,
        max_bytes=1 << 30,
        clone_timeout=WAIT,
        cancel=asyncio.Event(),
    )
    with archive, tarfile.open(fileobj=archive) as tar:
        names = tar.getnames()
        readme = [m for m in tar.getmembers() if m.name == "README.md"]
        assert {".git/HEAD", "only-later.txt", "notes/n.md"} <= set(names)
        assert len(readme) == 2  # the task's file comes last: it wins when unpacked
        last = tar.extractfile(readme[-1])
        assert last is not None
        assert last.read() == b"the task's\n"
        assert {m.uid for m in tar.getmembers()} == {workspace.OWNER}
    with pytest.raises(LaunchError):
        await workspace.cloned_archive(
            Repository(url=f"{served.git}/project.git", branch="nope"),
            files,
            max_bytes=1 << 30,
            clone_timeout=WAIT,
            cancel=asyncio.Event(),
        )
    assert not list(tmp_path.glob("orchestrator-clone-*"))
