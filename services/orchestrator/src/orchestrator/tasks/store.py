# ruff: noqa: S608 - queries are put together from constants and `?` placeholders only
"""Where tasks are kept on the embedded (Docker) backend: one SQLite file in the state
directory, in WAL mode, its schema versioned with `PRAGMA user_version`.

Every phase change is a compare-and-set (`UPDATE ... WHERE phase IN (...)`), committed
before the action it announces: a task is marked `starting` before its first container
is created, so a restarted orchestrator knows which tasks may have containers to adopt,
and a task is never started twice. `synchronous=FULL`: a task the API acknowledged
survives a power cut, not only a crash of this process.

One orchestrator per state directory: the store holds an exclusive `flock` on
`<state_dir>/lock` while it is open (two controllers would start the same tasks), and a
second one is refused with the first one's pid.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from orchestrator.tasks.model import (
    FINISHED,
    Phase,
    TaskCreate,
    ToolCalls,
    WorkspaceFile,
    file_bytes,
)
from orchestrator.tasks.records import COLUMNS, TaskRecord, record_of
from orchestrator.tasks.schema import SCHEMA_VERSION, migrate, summarise

UPDATABLE = frozenset(
    {"phase", "reason", "exit_code", "launched_at", "started_at", "finished_at", "cleaned_at",
     "cancel_requested", "tool_calls"}
)  # fmt: skip


class StoreError(Exception):
    """The state directory or database cannot be used; the message says why."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


def body_hash(spec: TaskCreate) -> str:
    """The same request in any key order or spacing hashes the same."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class TaskStore:
    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._owner = _own_state_dir(path.parent)
        except OSError as exc:
            raise StoreError(f"cannot use the state directory {path.parent}: {exc}") from exc
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            os.close(self._owner)
            raise StoreError(f"cannot open the task database {path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except (OSError, sqlite3.Error, StoreError) as exc:
            self.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open the task database {path}: {exc}") from exc

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this orchestrator's "
                f"{SCHEMA_VERSION}; run the newer orchestrator or use another state directory"
            )
        with self._transaction() as db:
            migrate(db, version)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            os.close(self._owner)  # releases the state directory

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------

    def create(
        self, spec: TaskCreate, idempotency_key: str | None = None
    ) -> tuple[TaskRecord, bool]:
        """The new task, or with the same key and body the earlier one (`created` False)."""
        digest = body_hash(spec)
        with self._immediate() as db:
            if idempotency_key is not None:
                row = db.execute(
                    f"SELECT {COLUMNS}, body_hash FROM tasks WHERE idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row[-1] != digest:
                        raise IdempotencyConflict(row[1])
                    return record_of(row[:-1]), False
            task_id = str(uuid.uuid4())
            cursor = db.execute(
                "INSERT INTO tasks (id, spec, files, phase, created_at, idempotency_key, "
                "body_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    spec.model_copy(update={"files": []}).model_dump_json(),
                    json.dumps([summarise(f) for f in spec.files]),
                    Phase.PENDING,
                    self.clock(),
                    idempotency_key,
                    digest,
                ),
            )
            seq = cursor.lastrowid
            db.executemany(
                "INSERT INTO labels (seq, key, value) VALUES (?, ?, ?)",
                [(seq, key, value) for key, value in spec.labels.items()],
            )
            db.executemany(
                "INSERT INTO task_files (seq, path, data, executable) VALUES (?, ?, ?, ?)",
                [(seq, f.path, file_bytes(f), int(f.executable)) for f in spec.files],
            )
            found = self._get(db, task_id)
        assert found is not None
        return found, True

    def transition(
        self, task_id: str, allowed: Iterable[Phase], to: Phase, **fields: object
    ) -> TaskRecord | None:
        """Move the task to `to` if it is in one of `allowed`; None when it was not."""
        now = self.clock()
        values: dict[str, object] = {"phase": to, **fields}
        if to is Phase.STARTING:
            values.setdefault("launched_at", now)
        if to is Phase.RUNNING:
            values.setdefault("started_at", now)
        if to in FINISHED:
            values.setdefault("finished_at", now)
        return self._update(task_id, values, allowed, drop_files=to in FINISHED)

    def update(self, task_id: str, **fields: object) -> TaskRecord | None:
        """Set fields that do not change the phase (reason, tool calls, cleaned_at)."""
        return self._update(task_id, fields, None)

    def _update(
        self,
        task_id: str,
        fields: Mapping[str, object],
        allowed: Iterable[Phase] | None,
        *,
        drop_files: bool = False,
    ) -> TaskRecord | None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"not a task column: {', '.join(sorted(unknown))}")
        values = {
            key: (value.model_dump_json() if isinstance(value, ToolCalls) else value)
            for key, value in fields.items()
        }
        assignments = ", ".join(f"{key} = ?" for key in values)
        params: list[object] = [*values.values(), task_id]
        where = "id = ?"
        if allowed is not None:
            phases = list(allowed)
            where += f" AND phase IN ({', '.join('?' * len(phases))})"
            params += phases
        with self._immediate() as db:
            changed = db.execute(f"UPDATE tasks SET {assignments} WHERE {where}", params).rowcount
            if changed and drop_files:  # an ended task's files are never written again
                db.execute(
                    "DELETE FROM task_files WHERE seq = (SELECT seq FROM tasks WHERE id = ?)",
                    (task_id,),
                )
            return self._get(db, task_id) if changed else None

    def request_cancel(self, task_id: str) -> TaskRecord | None:
        """Pending tasks are cancelled at once; active ones are marked for the controller."""
        cancelled = self.transition(
            task_id, (Phase.PENDING,), Phase.CANCELLED, reason="cancelled before it started"
        )
        if cancelled is not None:
            return cancelled
        with self._immediate() as db:
            db.execute(
                "UPDATE tasks SET cancel_requested = 1 WHERE id = ? AND phase IN (?, ?)",
                (task_id, Phase.STARTING, Phase.RUNNING),
            )
            return self._get(db, task_id)

    # -- reads ----------------------------------------------------------------------------

    def launch_spec(self, record: TaskRecord) -> TaskCreate:
        """The task's spec with its files' contents, as a launch writes them."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT path, data, executable FROM task_files WHERE seq = ? ORDER BY rowid",
                (record.seq,),
            ).fetchall()
        files = [
            WorkspaceFile.model_construct(
                path=path,
                content=base64.b64encode(data).decode(),
                encoding="base64",
                executable=bool(executable),
            )
            for path, data, executable in rows
        ]
        return record.spec.model_copy(update={"files": files})

    def get(self, task_id: str) -> TaskRecord | None:
        with self._transaction() as db:
            return self._get(db, task_id)

    def _get(self, db: sqlite3.Connection, task_id: str) -> TaskRecord | None:
        row = db.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return record_of(row) if row else None

    def page(
        self,
        *,
        phases: Sequence[Phase] = (),
        labels: Mapping[str, str] | None = None,
        after_seq: int = 0,
        limit: int = 50,
        newest_first: bool = False,
    ) -> list[TaskRecord]:
        """In submission order from after `after_seq` (a page's cursor); `newest_first`:
        the other way, from before `after_seq` (0: from the newest)."""
        if newest_first:
            where: list[str] = ["seq < ?" if after_seq else "seq > ?"]
        else:
            where = ["seq > ?"]
        params: list[object] = [after_seq]
        if phases:
            where.append(f"phase IN ({', '.join('?' * len(phases))})")
            params += list(phases)
        for key, value in (labels or {}).items():
            where.append("seq IN (SELECT seq FROM labels WHERE key = ? AND value = ?)")
            params += [key, value]
        order = "DESC" if newest_first else "ASC"
        query = (
            f"SELECT {COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?"
        )
        with self._transaction() as db:
            return [record_of(row) for row in db.execute(query, [*params, limit])]

    def in_phases(self, *phases: Phase, limit: int = 10_000) -> list[TaskRecord]:
        return self.page(phases=phases, limit=limit)

    def finished_before(self, moment: float, limit: int = 100) -> list[TaskRecord]:
        """Finished tasks whose containers are still there, finished before `moment`."""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {COLUMNS} FROM tasks WHERE finished_at IS NOT NULL "
                "AND finished_at <= ? AND cleaned_at IS NULL ORDER BY finished_at LIMIT ?",
                (moment, limit),
            ).fetchall()
        return [record_of(row) for row in rows]

    def counts(self) -> dict[Phase, int]:
        with self._transaction() as db:
            rows = db.execute("SELECT phase, COUNT(*) FROM tasks GROUP BY phase").fetchall()
        counts = dict.fromkeys(Phase, 0)
        counts.update({Phase(phase): count for phase, count in rows})
        return counts


def _own_state_dir(directory: Path) -> int:
    """The open lock file, locked; StoreError naming the holder when another has it."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreError(
            f"another orchestrator (pid {holder}) is using the state directory {directory}; "
            "stop it, or give this one another --state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
