"""The state directory: one orchestrator owns it (an exclusive `flock` on
`<state_dir>/lock`), and one it cannot use stops `orchestrator serve` with one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import NO_ENGINE, TOKEN, Running, answers, free_port, start_orchestrator, stop

from orchestrator.tasks.store import StoreError, TaskStore

ENV = {"ORCHESTRATOR_TOKEN": TOKEN, "DOCKER_HOST": NO_ENGINE}


def serve_and_wait(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """`orchestrator serve` that is expected to give up before it serves."""
    port = str(free_port())
    process = start_orchestrator(
        ["--host", "127.0.0.1", "--port", port], ENV | {"ORCHESTRATOR_STATE_DIR": str(state_dir)}
    )
    try:
        output, _ = process.communicate(timeout=30)
    finally:
        stop(process)
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def test_a_state_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    result = serve_and_wait(blocker / "state")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("orchestrator: error: cannot use the state directory")
    assert str(blocker / "state") in lines[0]
    assert "Traceback" not in result.stdout


def test_a_second_orchestrator_on_the_same_state_dir_is_refused(
    running_orchestrator: Running, tmp_path: Path
) -> None:
    result = serve_and_wait(tmp_path / "state")  # the running one's state directory
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert f"another orchestrator (pid {running_orchestrator.process.pid})" in lines[0]
    assert "--state-dir" in lines[0]
    assert answers(running_orchestrator.base_url)  # the first one serves on


def test_the_store_holds_the_directory_until_it_is_closed(tmp_path: Path) -> None:
    first = TaskStore(tmp_path / "tasks.db", lambda: 0.0)
    with pytest.raises(StoreError, match="another orchestrator"):
        TaskStore(tmp_path / "tasks.db", lambda: 0.0)
    first.close()
    TaskStore(tmp_path / "tasks.db", lambda: 0.0).close()  # free again
