"""The init step that puts a task's files into its workspace, run as the Job runs it
(`python -P -m orchestrator.backends.kubernetes.place_files`) on a directory laid out as
Kubernetes mounts the task's ConfigMap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.backends.kubernetes.place_files import place


def mount(tmp_path: Path, entries: list[tuple[str, str, bool, bytes]]) -> Path:
    files = tmp_path / "task-files"
    files.mkdir()
    index = [{"key": key, "path": path, "executable": ex} for key, path, ex, _ in entries]
    (files / "files.json").write_text(json.dumps(index))
    for key, _, _, data in entries:
        (files / key).write_bytes(data)
    return files


def test_the_files_land_in_the_workspace_with_their_modes(tmp_path: Path) -> None:
    files = mount(
        tmp_path,
        [("file-0", "notes/plan.md", False, b"# plan"), ("file-1", "run.sh", True, b"#!/bin/sh")],
    )
    workspace = tmp_path / "work" / "workspace"
    result = subprocess.run(
        [sys.executable, "-P", "-m", "orchestrator.backends.kubernetes.place_files",
         str(files), str(workspace)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (workspace / "notes" / "plan.md").read_bytes() == b"# plan"
    assert (workspace / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (workspace / "notes" / "plan.md").stat().st_mode & 0o777 == 0o644


def test_a_path_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    files = mount(tmp_path, [("file-0", "../escape", False, b"x")])
    result = subprocess.run(
        [sys.executable, "-P", "-m", "orchestrator.backends.kubernetes.place_files",
         str(files), str(tmp_path / "ws")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: placing the task's files failed")
    assert not (tmp_path / "escape").exists()


def test_a_symbolic_link_of_the_repository_does_not_lead_out(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "docs").symlink_to(outside)
    files = mount(tmp_path, [("file-0", "docs/x.md", False, b"x")])
    with pytest.raises(ValueError, match="leads out of the workspace"):
        place(files, workspace)
    assert not (outside / "x.md").exists()
