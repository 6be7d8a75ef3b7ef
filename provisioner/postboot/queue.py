"""The host-side job queue: one SQLite table in `<root>/state.db`, shared by every process.

States: queued -> running -> done | failed; queued -> cancelled; a job for a
simulated hypervisor is recorded as skipped. A running job whose worker process
is gone is put back in the queue (its steps are idempotent), at most
`max_attempts` times in all; after that it fails.

Each operation opens its own short connection; claiming takes SQLite's write
lock first (BEGIN IMMEDIATE), so two workers never claim the same job.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from provisioner.claimer import Worker
from provisioner.layout import Layout
from provisioner.postboot.errors import JobNotFound, JobStateError
from provisioner.postboot.params import KINDS, JobParams
from provisioner.postboot.settings import PostbootSettings
from provisioner.sqlite import connect_wal, write_transaction

QUEUED, RUNNING, DONE, FAILED, SKIPPED, CANCELLED = "queued", "running", "done", "failed", "skipped", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, SKIPPED, CANCELLED)
FINISHED = frozenset({DONE, FAILED, SKIPPED, CANCELLED})

_KIND_CHECK = f"CHECK (kind IN ({', '.join(repr(k) for k in KINDS)}))"
_TABLE = f"""
CREATE TABLE IF NOT EXISTS postboot_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL {_KIND_CHECK},
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    step TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    worker_start INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    exit_code INTEGER,
    message TEXT,
    log_path TEXT,
    params TEXT NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS postboot_jobs_state ON postboot_jobs (state, id)"
_SCHEMA = f"{_TABLE};\n{_INDEX};\n"


def _widen_kinds(conn: sqlite3.Connection) -> None:
    """Rebuild a table made by an older version whose kind CHECK lacks a newer kind (e.g. backup).

    SQLite cannot alter a CHECK constraint: the rows are copied into a table
    with the current schema, inside one write transaction.
    """
    query = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'postboot_jobs'"
    row = conn.execute(query).fetchone()
    if row is None or _KIND_CHECK in row[0]:
        return
    with write_transaction(conn):
        if _KIND_CHECK in conn.execute(query).fetchone()[0]:
            return  # another process rebuilt it meanwhile
        conn.execute("ALTER TABLE postboot_jobs RENAME TO postboot_jobs_before_widening")
        conn.execute(_TABLE)
        conn.execute("INSERT INTO postboot_jobs SELECT * FROM postboot_jobs_before_widening")
        conn.execute("DROP TABLE postboot_jobs_before_widening")
        conn.execute(_INDEX)


@dataclass(frozen=True)
class JobRecord:
    """One row of the queue."""

    id: int
    token: str
    domain: str
    kind: str
    state: str
    step: str | None
    attempts: int
    worker_pid: int | None
    created: float
    started: float | None
    finished: float | None
    exit_code: int | None
    message: str | None
    log_path: str | None
    params: JobParams

    @property
    def guest_dir_name(self) -> str:
        """The job's directory name on the guest: unique even across roots sharing a guest."""
        return f"{self.domain}-{self.token}"

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable view (for `provision jobs --json` and the API)."""
        data = dict(self.__dict__)
        data["params"] = self.params.to_json()
        return data


class JobQueue:
    """The `postboot_jobs` table of a state database."""

    def __init__(self, path: Path, max_attempts: int = 3):
        self.path = path
        self.max_attempts = max_attempts

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = connect_wal(self.path)
        try:
            conn.row_factory = sqlite3.Row
            conn.executescript(_SCHEMA)
            _widen_kinds(conn)
            if write:
                with write_transaction(conn):
                    yield conn
            else:
                yield conn
        finally:
            conn.close()

    def add(self, domain: str, kind: str, params: JobParams, state: str = QUEUED,
            message: str | None = None) -> JobRecord:
        """Queue a job (or record one that is already finished, e.g. skipped)."""
        now = time.time()
        finished = now if state in FINISHED else None
        with self._db(write=True) as db:
            cursor = db.execute(
                "INSERT INTO postboot_jobs (token, domain, kind, state, created, finished, message, params)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (secrets.token_hex(8), domain, kind, state, now, finished, message, json.dumps(params.to_json())),
            )
            job_id = cursor.lastrowid
        assert job_id is not None
        return self.get(job_id)

    def get(self, job_id: int) -> JobRecord:
        """The job with this id, or JobNotFound."""
        if not self.path.exists():
            raise JobNotFound(f"no post-boot job {job_id}: no queue at {self.path} yet")
        with self._db() as db:
            row = db.execute("SELECT * FROM postboot_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no post-boot job {job_id} (see `provision jobs`)")
        return _record(row)

    def list(self, states: tuple[str, ...] = STATES, domain: str | None = None) -> list[JobRecord]:
        """Jobs in the given states (all by default), oldest first."""
        if not self.path.exists():
            return []
        marks = ", ".join("?" for _ in states)
        query = f"SELECT * FROM postboot_jobs WHERE state IN ({marks})"
        args: list[object] = list(states)
        if domain is not None:
            query += " AND domain = ?"
            args.append(domain)
        with self._db() as db:
            return [_record(row) for row in db.execute(query + " ORDER BY id", args)]

    def claim(self, worker: Worker, job_id: int | None = None) -> JobRecord | None:
        """Mark a queued job running for `worker` and return it; None if there is none to take.

        Without `job_id`, the oldest queued job is taken. A job is only taken
        while no other job of its domain runs. Jobs of dead workers are
        requeued (or failed) first.
        """
        with self._db(write=True) as db:
            self._reap(db)
            query = ("SELECT id FROM postboot_jobs AS q WHERE state = ? AND NOT EXISTS ("
                     " SELECT 1 FROM postboot_jobs AS r WHERE r.domain = q.domain AND r.state = ?)")
            args: tuple[object, ...] = (QUEUED, RUNNING)
            if job_id is not None:
                query += " AND id = ?"
                args += (job_id,)
            row = db.execute(query + " ORDER BY id LIMIT 1", args).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE postboot_jobs SET state = ?, worker_pid = ?, worker_start = ?, attempts = attempts + 1,"
                " started = COALESCE(started, ?), message = NULL WHERE id = ?",
                (RUNNING, worker.pid, worker.start, time.time(), row["id"]))
        return self.get(row["id"])

    def reap(self) -> None:
        """Requeue (or fail, after too many attempts) running jobs whose worker is gone."""
        with self._db(write=True) as db:
            self._reap(db)

    def _reap(self, db: sqlite3.Connection) -> None:
        for row in db.execute("SELECT * FROM postboot_jobs WHERE state = ?", (RUNNING,)).fetchall():
            if Worker(row["worker_pid"] or 0, row["worker_start"] or 0).alive():
                continue
            if row["attempts"] >= self.max_attempts:
                db.execute(
                    "UPDATE postboot_jobs SET state = ?, finished = ?, worker_pid = NULL, message = ? WHERE id = ?",
                    (FAILED, time.time(), f"the worker running it died {row['attempts']} time(s) "
                     f"(last in step {row['step'] or 'start'}); not retried again", row["id"]))
            else:
                db.execute(
                    "UPDATE postboot_jobs SET state = ?, worker_pid = NULL, message = ? WHERE id = ?",
                    (QUEUED, f"requeued: its worker (pid {row['worker_pid']}) died in step "
                     f"{row['step'] or 'start'}", row["id"]))

    def set_step(self, job_id: int, worker: Worker, step: str) -> None:
        """Record the step a running job has reached."""
        with self._db(write=True) as db:
            self._owned(db, job_id, worker)
            db.execute("UPDATE postboot_jobs SET step = ? WHERE id = ?", (step, job_id))

    def finish(self, job_id: int, worker: Worker, state: str, message: str,
               exit_code: int | None = None, log_path: str | None = None) -> JobRecord:
        """Record a running job's outcome (done or failed)."""
        if state not in (DONE, FAILED):
            raise ValueError(f"a running job finishes as done or failed, not {state}")
        with self._db(write=True) as db:
            self._owned(db, job_id, worker)
            db.execute(
                "UPDATE postboot_jobs SET state = ?, finished = ?, message = ?, exit_code = ?,"
                " log_path = COALESCE(?, log_path), worker_pid = NULL WHERE id = ?",
                (state, time.time(), message, exit_code, log_path, job_id))
        return self.get(job_id)

    def release(self, job_id: int, worker: Worker, message: str) -> None:
        """Put a job this worker runs back in the queue (e.g. on Ctrl-C), to be resumed later."""
        with self._db(write=True) as db:
            self._owned(db, job_id, worker)
            db.execute(
                "UPDATE postboot_jobs SET state = ?, worker_pid = NULL, attempts = MAX(attempts - 1, 0),"
                " message = ? WHERE id = ?", (QUEUED, message, job_id))

    def cancel(self, job_id: int) -> JobRecord:
        """Cancel a queued job (like atrm); a running or finished job cannot be cancelled."""
        with self._db(write=True) as db:
            row = db.execute("SELECT state, step FROM postboot_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"no post-boot job {job_id} (see `provision jobs`)")
            if row["state"] == RUNNING:
                raise JobStateError(f"job {job_id} is running (step {row['step'] or 'start'}): only a queued "
                                    "job can be cancelled; it ends on its own when its step times out")
            if row["state"] != QUEUED:
                raise JobStateError(f"job {job_id} has already finished ({row['state']})")
            db.execute("UPDATE postboot_jobs SET state = ?, finished = ?, message = ? WHERE id = ?",
                       (CANCELLED, time.time(), "cancelled before it ran", job_id))
        return self.get(job_id)

    @staticmethod
    def _owned(db: sqlite3.Connection, job_id: int, worker: Worker) -> None:
        row = db.execute("SELECT state, worker_pid, worker_start FROM postboot_jobs WHERE id = ?",
                         (job_id,)).fetchone()
        if row is None or row["state"] != RUNNING or (row["worker_pid"], row["worker_start"]) != (worker.pid, worker.start):
            raise JobStateError(f"job {job_id} is no longer run by this worker (pid {worker.pid})")


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"], token=row["token"], domain=row["domain"], kind=row["kind"], state=row["state"],
        step=row["step"], attempts=row["attempts"], worker_pid=row["worker_pid"], created=row["created"],
        started=row["started"], finished=row["finished"], exit_code=row["exit_code"],
        message=row["message"], log_path=row["log_path"], params=JobParams.from_json(json.loads(row["params"])),
    )


def queue_for(layout: Layout, settings: PostbootSettings) -> JobQueue:
    """The job queue under `layout`'s root."""
    return JobQueue(layout.state_db, settings.max_attempts)
