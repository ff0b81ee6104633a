"""A task's repository is cloned into its workspace before the agent starts.

The repository is served by real git (`git daemon`, git:// on loopback) and cloned by
the installed wheel's orchestrator; the agent is the real Claude Code, whose own Read
tool (the scripted model asks for it) shows what the workspace holds.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.deployment import (
    ModelServer,
    OrchestratorProcess,
    PlatformImages,
    orchestrator_config,
    task_body,
    task_leftovers,
)
from tests.e2e.images import wait_until
from tests.e2e.model_api import marker
from tests.e2e.support import free_port, require
from tests.helpers import GitRepo, init_repo

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

FINAL = ("succeeded", "failed", "timed_out", "cancelled")


@pytest.fixture
def served_repo(tmp_path: Path) -> Iterator[tuple[str, GitRepo]]:
    """A repository with a `feature` branch, served read-only by `git daemon`."""
    require(shutil.which("git") is not None, "git is not installed", "apt-get install git")
    repo = init_repo(tmp_path / "served" / "project.git")
    repo.write("README.md", "first\n")
    first = repo.commit("first")
    repo.write("only-later.txt", "added later\n")
    repo.commit("second")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.txt", f"feature branch of {first}\n")
    repo.commit("feature")
    repo.git("checkout", "-q", "main")
    (repo.path / ".git" / "git-daemon-export-ok").touch()
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={tmp_path / 'served'}", str(tmp_path / "served")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"git://127.0.0.1:{port}/project.git"

        def serving() -> bool:
            probe = subprocess.run(["git", "ls-remote", url], capture_output=True, check=False)
            assert daemon.poll() is None, "git daemon exited"
            return probe.returncode == 0

        wait_until(serving, 30, "git daemon serving the repository", 0.1)
        yield url, repo
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture
def orchestrator(
    platform_images: PlatformImages, task_network: str, model_server: ModelServer, tmp_path: Path
) -> Iterator[OrchestratorProcess]:
    # The repository is served on loopback, which the orchestrator refuses by default.
    config = orchestrator_config(
        platform_images, task_network, str(tmp_path / "state"), repository_networks_denied=[]
    )
    running = OrchestratorProcess(tmp_path).start(config)
    try:
        yield running
    finally:
        running.stop()
        running.api.close()


def read_file(path: str) -> str:
    """A prompt that makes Claude Code read `path` with its own Read tool."""
    return marker("tool", tool="Read", args={"file_path": path}, key=uuid.uuid4().hex[:8])


def test_a_branch_is_cloned_and_the_tasks_files_are_added(
    orchestrator: OrchestratorProcess,
    model_server: ModelServer,
    served_repo: tuple[str, GitRepo],
) -> None:
    url, repo = served_repo
    body = task_body(
        read_file("/workspace/feature.txt"),
        repository={"url": url, "branch": "feature"},
        files=[{"path": "feature.txt", "content": "overwritten by the task\n"}],
    )
    done = orchestrator.api.wait(orchestrator.api.submit(body)["id"], *FINAL)
    assert done["phase"] == "succeeded", done
    log = orchestrator.api.logs(done["id"])
    assert "overwritten by the task" in log  # the task's files go over the clone

    body = task_body(
        read_file("/workspace/feature.txt"), repository={"url": url, "branch": "feature"}
    )
    done = orchestrator.api.wait(orchestrator.api.submit(body)["id"], *FINAL)
    assert done["phase"] == "succeeded", done
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    assert f"feature branch of {first}" in orchestrator.api.logs(done["id"])


def test_a_commit_is_checked_out(
    orchestrator: OrchestratorProcess,
    model_server: ModelServer,
    served_repo: tuple[str, GitRepo],
) -> None:
    url, repo = served_repo
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    body = task_body(
        read_file("/workspace/only-later.txt"), repository={"url": url, "commit": first[:10]}
    )
    done = orchestrator.api.wait(orchestrator.api.submit(body)["id"], *FINAL)
    assert done["phase"] == "succeeded", done
    turns = [r for r in model_server.requests() if r.get("main") and r.get("tool_results")]
    result = next(r for r in reversed(turns) if "only-later.txt" in str(r["messages"]))
    assert "added later" not in result["tool_results"][0]["content"]  # not in that commit
    assert result["tool_results"][0]["is_error"]


def test_a_repository_that_cannot_be_cloned_fails_the_task_with_the_reason(
    orchestrator: OrchestratorProcess, served_repo: tuple[str, GitRepo]
) -> None:
    url, _ = served_repo
    body = task_body("never runs", repository={"url": url.replace("project", "missing")})
    done = orchestrator.api.wait(orchestrator.api.submit(body)["id"], *FINAL)
    assert done["phase"] == "failed", done
    assert done["reason"].startswith(f"cloning {url.replace('project', 'missing')} failed")
    assert done["started_at"] is None  # the agent never ran


def test_by_default_a_loopback_repository_is_refused(
    docker_engine: docker.DockerClient,
    platform_images: PlatformImages,
    task_network: str,
    served_repo: tuple[str, GitRepo],
    tmp_path: Path,
) -> None:
    """The orchestrator's own loopback is not a task's to fetch from: an address is a 422,
    a name that resolves there fails the task at launch, before anything is created."""
    url, _ = served_repo
    config = orchestrator_config(platform_images, task_network, str(tmp_path / "state"))
    running = OrchestratorProcess(tmp_path).start(config)
    try:
        refused = running.api.client.post(
            "/api/v1/tasks", json=task_body("never runs", repository={"url": url})
        )
        assert refused.status_code == 422, refused.text
        error = refused.json()["detail"][0]
        assert error["loc"] == ["body", "repository", "url"]
        assert "the host 127.0.0.1 is in 127.0.0.0/8" in error["msg"]

        by_name = url.replace("127.0.0.1", "localhost")
        task = running.api.submit(task_body("never runs", repository={"url": by_name}))
        done = running.api.wait(task["id"], *FINAL)
        assert done["phase"] == "failed", done
        assert done["reason"].startswith("repository.url: the host localhost (")
        assert "tasks.repository_networks_denied" in done["reason"]
        assert done["started_at"] is None  # the agent never ran
        assert task_leftovers(docker_engine, task["id"]) == []  # nothing was created
    finally:
        running.stop()
        running.api.close()
