"""The task database's schema, one migration per version (`PRAGMA user_version`).

Version 2 keeps a task's file contents out of its `spec` (table `task_files`, deleted
when the task ends; `tasks.files` keeps their summary): reading a task — every GET,
every controller tick — must not parse and decode megabytes of base64 each time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from orchestrator.tasks.model import WorkspaceFile, file_bytes

V1 = """
CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT,
    exit_code INTEGER,
    created_at REAL NOT NULL,
    launched_at REAL,
    started_at REAL,
    finished_at REAL,
    cleaned_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    tool_calls TEXT,
    idempotency_key TEXT UNIQUE,
    body_hash TEXT
);
CREATE INDEX tasks_by_phase ON tasks (phase, seq);
CREATE TABLE labels (
    seq INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (seq, key)
);
CREATE INDEX labels_by_pair ON labels (key, value);
"""

V2 = """
CREATE TABLE task_files (
    seq INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
    path TEXT NOT NULL,
    data BLOB NOT NULL,
    executable INTEGER NOT NULL,
    PRIMARY KEY (seq, path)
);
ALTER TABLE tasks ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
"""


def files_out_of_specs(db: sqlite3.Connection) -> None:
    """Move the file contents version 1 kept in each spec into `task_files`."""
    rows = db.execute("SELECT seq, spec, phase FROM tasks").fetchall()
    for seq, raw, phase in rows:
        spec = json.loads(raw)
        files = [WorkspaceFile.model_validate(f) for f in spec.get("files", [])]
        if phase in ("pending", "starting"):  # their files are still to be written
            db.executemany(
                "INSERT INTO task_files (seq, path, data, executable) VALUES (?, ?, ?, ?)",
                [(seq, f.path, file_bytes(f), int(f.executable)) for f in files],
            )
        summary = [summarise(f) for f in files]
        spec["files"] = []
        db.execute(
            "UPDATE tasks SET spec = ?, files = ? WHERE seq = ?",
            (json.dumps(spec), json.dumps(summary), seq),
        )


def summarise(file: WorkspaceFile) -> dict[str, object]:
    return {"path": file.path, "bytes": len(file_bytes(file)), "executable": file.executable}


Migration = tuple[str, Callable[[sqlite3.Connection], None] | None]
MIGRATIONS: tuple[Migration, ...] = ((V1, None), (V2, files_out_of_specs))
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, version: int) -> None:
    """From `version` to SCHEMA_VERSION, each step in its own transaction."""
    for number in range(version, SCHEMA_VERSION):
        script, then = MIGRATIONS[number]
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            if then is not None:
                then(db)
            db.execute(f"PRAGMA user_version={number + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
