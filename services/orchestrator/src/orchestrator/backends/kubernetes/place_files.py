"""The init step that writes a task's files into its workspace, before the agent starts.

    python -P -m orchestrator.backends.kubernetes.place_files FILES_DIR WORKSPACE

FILES_DIR is the task's ConfigMap mounted read-only: `files.json` lists each file's key,
its path in the workspace and whether it is executable; the key's file holds the bytes.
Paths were checked when the task was accepted (relative, no `..`, not in `.git`); they
are checked again here, so a TaskRun written to the API by hand cannot escape the
workspace. A file of the repository at the same path is replaced, as on Docker.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from orchestrator.tasks.model import WorkspaceFile


def place(files_dir: Path, workspace: Path) -> int:
    index = json.loads((files_dir / "files.json").read_text(encoding="utf-8"))
    workspace.mkdir(parents=True, exist_ok=True)
    for entry in index:
        key, path, executable = str(entry["key"]), str(entry["path"]), bool(entry["executable"])
        checked = WorkspaceFile(path=path, content="")  # the API's own path rules
        target = workspace.joinpath(*PurePosixPath(checked.path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(workspace.resolve()):
            raise ValueError(f"{path}: a symbolic link leads out of the workspace")
        target.unlink(missing_ok=True)
        target.write_bytes((files_dir / key).read_bytes())
        target.chmod(0o755 if executable else 0o644)
    return len(index)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.backends.kubernetes.place_files")
    parser.add_argument("files_dir", type=Path)
    parser.add_argument("workspace", type=Path)
    args = parser.parse_args(argv)
    try:
        count = place(args.files_dir, args.workspace)
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: placing the task's files failed: {exc}\n")
        return 1
    sys.stdout.write(f"placed {count} file(s) in {args.workspace}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
