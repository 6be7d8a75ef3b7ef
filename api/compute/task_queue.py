"""The server task queue: table `api_server_tasks` in `<root>/state.db`, claimable by any API process.

A task is queued, then running (claimed by a process: pid + start time), then
gone. One server's tasks run one at a time in submission order; different
servers' tasks run at once. A running task whose claimer died is queued
again (its handlers are idempotent), at most `max_attempts` times in all.
Claiming takes SQLite's write lock first (BEGIN IMMEDIATE), so two
processes never claim the same task.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from api.db import Database
from provisioner.claimer import Worker

QUEUED, RUNNING = "queued", "running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_server_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    worker_start INTEGER,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS api_server_tasks_server ON api_server_tasks (server_id, state);
"""


@dataclass(frozen=True)
class Task:
    """One unit of work on a server: `kind` names the handler, `args` is what it needs (JSON-able)."""

    id: int
    server_id: str
    kind: str
    args: dict[str, Any]
    attempts: int = 0


class TaskQueue:
    """The `api_server_tasks` table of the API's database."""

    def __init__(self, db: Database, max_running: int, max_attempts: int = 3):
        self.db = db
        self.max_running = max_running
        self.max_attempts = max_attempts
        self.db.connect().executescript(_SCHEMA)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.db.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def add(self, server_id: str, kind: str, args: dict[str, Any]) -> Task:
        """Queue a task after the ones already queued."""
        cur = self.db.connect().execute(
            "INSERT INTO api_server_tasks (server_id, kind, args, state, created) VALUES (?, ?, ?, ?, ?)",
            (server_id, kind, json.dumps(args), QUEUED, time.time()))
        assert cur.lastrowid is not None
        return Task(cur.lastrowid, server_id, kind, args)

    def pending(self) -> bool:
        """True if any task is queued or running (a cheap read before claiming)."""
        return self.db.connect().execute("SELECT 1 FROM api_server_tasks LIMIT 1").fetchone() is not None

    def servers(self) -> set[str]:
        """The servers with a queued or running task."""
        return {row[0] for row in self.db.connect().execute("SELECT DISTINCT server_id FROM api_server_tasks")}

    def claim(self, worker: Worker) -> Task | None:
        """Mark the oldest runnable task running for `worker` and return it; None if there is none.

        A task is runnable while no task of its server runs (a server's tasks
        are thus taken in id order) and fewer than `max_running` run in all,
        whichever processes run them.
        """
        with self._write() as conn:
            if conn.execute("SELECT COUNT(*) FROM api_server_tasks WHERE state = ?",
                            (RUNNING,)).fetchone()[0] >= self.max_running:
                return None
            row = conn.execute(
                "SELECT id, server_id, kind, args, attempts FROM api_server_tasks AS q WHERE state = ? AND NOT EXISTS"
                " (SELECT 1 FROM api_server_tasks AS r WHERE r.server_id = q.server_id AND r.state = ?)"
                " ORDER BY id LIMIT 1", (QUEUED, RUNNING)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE api_server_tasks SET state = ?, worker_pid = ?, worker_start = ?,"
                         " attempts = attempts + 1 WHERE id = ?", (RUNNING, worker.pid, worker.start, row[0]))
        return Task(row[0], row[1], row[2], json.loads(row[3]), row[4] + 1)

    def done(self, task: Task) -> None:
        """Forget a task that has run (whatever its outcome: handlers record that on the server)."""
        self.db.connect().execute("DELETE FROM api_server_tasks WHERE id = ?", (task.id,))

    def release(self, task: Task) -> None:
        """Put a running task back in the queue, as if never tried (its run was interrupted, not failed)."""
        self.db.connect().execute("UPDATE api_server_tasks SET state = ?, worker_pid = NULL,"
                                  " attempts = MAX(attempts - 1, 0) WHERE id = ?", (QUEUED, task.id))

    def reap(self) -> list[Task]:
        """Queue again the running tasks whose claimer died; return those dropped after `max_attempts`."""
        dropped = []
        with self._write() as conn:
            rows = conn.execute("SELECT id, server_id, kind, args, attempts, worker_pid, worker_start"
                                " FROM api_server_tasks WHERE state = ?", (RUNNING,)).fetchall()
            for task_id, server_id, kind, args, attempts, pid, start in rows:
                if Worker(pid or 0, start or 0).alive():
                    continue
                if attempts >= self.max_attempts:
                    conn.execute("DELETE FROM api_server_tasks WHERE id = ?", (task_id,))
                    dropped.append(Task(task_id, server_id, kind, json.loads(args), attempts))
                else:
                    conn.execute("UPDATE api_server_tasks SET state = ?, worker_pid = NULL WHERE id = ?",
                                 (QUEUED, task_id))
        return dropped
