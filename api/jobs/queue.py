"""The job queue: table `api_jobs` of the API's database (api/db.py), claimable by any API process.

A job is queued, then running (claimed by a process: its node, pid + start
time, and a lease), then gone. One subject's jobs run one at a time in
submission order; different subjects' jobs run at once. A running job whose
claimer died is queued again (its handlers are idempotent), at most
`max_attempts` times in all; then `reap` returns it as dropped.

A node is one API root (its random id, `<root>/terraform/state-id`): a pid
means something only to the processes of the claimer's own node, which may
be another host. So a claim carries a lease (`lease_expires`, seconds on
the database's clock, so the nodes' clocks need not agree) that the
claiming process renews while it runs the job; a node queues again its own
jobs whose process died (at once, as before), and other nodes' jobs whose
lease expired (a host gone, a process killed, a network partition longer
than the lease). Claiming takes the database's write lock
first (SQLite: BEGIN IMMEDIATE; PostgreSQL: the advisory lock of
Database.transaction), so two processes, of one root or of several roots
sharing a PostgreSQL database, never claim the same job, nor two jobs of one
subject, nor more than `max_running` in all. On PostgreSQL the claiming
SELECT also locks its row (FOR UPDATE SKIP LOCKED): a row another
connection's statement is changing at that moment (done, release) is passed
over instead of waited for.

Roots made before jobs had subjects hold `api_server_tasks` (a server_id
column, whatever the job acted on): its rows move to `api_jobs` the first
time a queue opens the root, claims and attempts kept, so queued jobs
resume after an upgrade.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from api.db import POSTGRESQL, SQLITE, Connection, Database
from api.jobs.records import SERVER, Job, JobFormatError, decode, record_type
from provisioner.claimer import Worker

log = logging.getLogger("api.jobs")

QUEUED, RUNNING = "queued", "running"
TABLE = "api_jobs"
OLD_TABLE = "api_server_tasks"

_SCHEMA = (f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    worker_start INTEGER,
    created REAL NOT NULL,
    claimed_by TEXT,
    lease_expires REAL
)""", f"CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {TABLE} (subject_kind, subject_id, state)")
_COLUMNS = "id, subject_kind, subject_id, kind, args, attempts"
# Columns added after the table first shipped (ALTER TABLE on roots made before them).
_ADDED = (("claimed_by", "TEXT"), ("lease_expires", "REAL"))
# Seconds since the epoch on the database's clock: every node sharing a PostgreSQL database reads the same one.
_NOW = {SQLITE: "((julianday('now') - 2440587.5) * 86400.0)", POSTGRESQL: "EXTRACT(EPOCH FROM clock_timestamp())"}
LEASE = 30.0  # default seconds a claim stays valid without being renewed


@dataclass(frozen=True)
class Claimer:
    """Who claims jobs: a process (`worker`) of an API node (`node`, a root's id)."""

    node: str
    worker: Worker

    @classmethod
    def current(cls, node: str) -> Claimer:
        """This process, of node `node`."""
        return cls(node, Worker.current())


@dataclass(frozen=True)
class QueuedJob:
    """A job as the queue holds it: its row id and how many times it has been claimed."""

    id: int
    job: Job
    attempts: int = 0


def _subject_kind(kind: str) -> str:
    """The subject kind of an old row's job kind (an unknown kind moves as a server's: the old table's column)."""
    try:
        return record_type(kind).subject_kind
    except JobFormatError:
        return SERVER


class JobQueue:
    """The `api_jobs` table of the API's database."""

    def __init__(self, db: Database, max_running: int, max_attempts: int = 3, lease: float = LEASE):
        self.db = db
        self.max_running = max_running
        self.max_attempts = max_attempts
        self.lease = lease
        self._now = _NOW[db.dialect]
        with self.db.transaction() as conn:
            for statement in _SCHEMA:  # not executescript: it would commit the transaction
                conn.execute(statement)
            self._add_columns(conn)
            if db.dialect is SQLITE:  # the old table only ever existed in a root's state.db
                self._migrate(conn)

    def _add_columns(self, conn: Connection) -> None:
        """Add the lease columns to a table made before them (its running jobs then have no lease: see reap)."""
        if self.db.dialect is SQLITE:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
            for name, kind in _ADDED:
                if name not in have:
                    conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        else:
            for name, kind in _ADDED:
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {name} {kind}")

    @staticmethod
    def _migrate(conn: Connection) -> None:
        """Move the rows of `api_server_tasks` (older roots) into `api_jobs`, in order, then drop it."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (OLD_TABLE,)).fetchone() is None:
            return
        rows = conn.execute(f"SELECT server_id, kind, args, state, attempts, worker_pid, worker_start, created"
                            f" FROM {OLD_TABLE} ORDER BY id").fetchall()
        conn.executemany(
            f"INSERT INTO {TABLE} (subject_kind, subject_id, kind, args, state, attempts, worker_pid,"
            " worker_start, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(_subject_kind(kind), subject_id, kind, *rest) for subject_id, kind, *rest in rows])
        conn.execute(f"DROP TABLE {OLD_TABLE}")
        log.info("moved %d queued tasks from %s to %s", len(rows), OLD_TABLE, TABLE)

    def add(self, job: Job) -> QueuedJob:
        """Queue a job after the ones already queued."""
        subject = job.subject
        (row_id,) = self.db.connect().execute(
            f"INSERT INTO {TABLE} (subject_kind, subject_id, kind, args, state, created) VALUES (?, ?, ?, ?, ?, ?)"
            " RETURNING id", (subject.kind, subject.id, job.kind, json.dumps(job.to_args()), QUEUED, time.time())
        ).fetchone()
        return QueuedJob(row_id, job)

    def pending(self) -> bool:
        """True if any job is queued or running (a cheap read before claiming)."""
        return self.db.connect().execute(f"SELECT 1 FROM {TABLE} LIMIT 1").fetchone() is not None

    def subjects(self, subject_kind: str) -> set[str]:
        """The ids of the subjects of this kind with a queued or running job."""
        return {row[0] for row in self.db.connect().execute(
            f"SELECT DISTINCT subject_id FROM {TABLE} WHERE subject_kind = ?", (subject_kind,))}

    def claim(self, claimer: Claimer) -> QueuedJob | None:
        """Mark the oldest runnable job running for `claimer`, leased for `lease` s, and return it; None if none.

        A job is runnable while no job of its subject runs (a subject's jobs
        are thus taken in id order) and fewer than `max_running` run in all,
        whichever processes run them. A row that is no job record (another
        version's, or damaged) is logged and deleted: it could never run.
        """
        with self.db.transaction() as conn:
            if conn.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE state = ?",
                            (RUNNING,)).fetchone()[0] >= self.max_running:
                return None
            while True:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM {TABLE} AS q WHERE state = ? AND NOT EXISTS"
                    f" (SELECT 1 FROM {TABLE} AS r WHERE r.subject_kind = q.subject_kind"
                    " AND r.subject_id = q.subject_id AND r.state = ?) ORDER BY id LIMIT 1"
                    + self.db.dialect.skip_locked,
                    (QUEUED, RUNNING)).fetchone()
                if row is None:
                    return None
                queued = self._decoded(conn, row)
                if queued is not None:
                    break
            worker = claimer.worker
            conn.execute(f"UPDATE {TABLE} SET state = ?, worker_pid = ?, worker_start = ?, claimed_by = ?,"
                         f" lease_expires = {self._now} + ?, attempts = attempts + 1 WHERE id = ?",
                         (RUNNING, worker.pid, worker.start, claimer.node, self.lease, queued.id))
        return QueuedJob(queued.id, queued.job, queued.attempts + 1)

    def renew(self, claimer: Claimer) -> int:
        """Extend by `lease` s the leases of the jobs `claimer` runs; how many it still holds.

        A job reaped meanwhile (its lease expired: this process was stalled or
        cut off from the database) is no longer this claimer's, and stays so.
        """
        worker = claimer.worker
        return len(self.db.connect().execute(
            f"UPDATE {TABLE} SET lease_expires = {self._now} + ? WHERE state = ? AND claimed_by = ?"
            " AND worker_pid = ? AND worker_start = ? RETURNING id",
            (self.lease, RUNNING, claimer.node, worker.pid, worker.start)).fetchall())

    @staticmethod
    def _decoded(conn: Connection, row: tuple) -> QueuedJob | None:
        """The job of a row, or None once an undecodable row is deleted."""
        row_id, subject_kind, subject_id, kind, args, attempts = row
        try:
            job = decode(kind, subject_id, json.loads(args))
            if job.subject.kind != subject_kind:
                raise JobFormatError(f"{job.kind} job: on a {subject_kind}, not a {job.subject_kind}")
        except (JobFormatError, json.JSONDecodeError) as exc:
            log.error("job %d on %s %s deleted, it cannot run: %s", row_id, subject_kind, subject_id, exc)
            conn.execute(f"DELETE FROM {TABLE} WHERE id = ?", (row_id,))
            return None
        return QueuedJob(row_id, job, attempts)

    def done(self, queued: QueuedJob) -> None:
        """Forget a job that has run (whatever its outcome: its handler records that on the subject).

        Only this claim of it: a job reaped and claimed again meanwhile (its
        lease expired) counts one more attempt, and is the new claimer's.
        """
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE id = ? AND attempts = ?", (queued.id, queued.attempts))

    def release(self, queued: QueuedJob) -> None:
        """Put a running job back in the queue, as if never tried (its run was interrupted, not failed)."""
        # CASE, not MAX(a, b): PostgreSQL's MAX is only the aggregate (its two-argument form is GREATEST).
        self.db.connect().execute(f"UPDATE {TABLE} SET state = ?, worker_pid = NULL, claimed_by = NULL,"
                                  " lease_expires = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                                  " ELSE 0 END WHERE id = ? AND attempts = ?", (QUEUED, queued.id, queued.attempts))

    def reap(self, node: str) -> list[QueuedJob]:
        """Queue again the running jobs whose claimer is gone; delete and return those claimed `max_attempts` times.

        Gone: for a job of this node (or claimed before claims named their
        node), its process died; for another node's, its lease expired
        (that node's pids mean nothing here).
        """
        dropped = []
        with self.db.transaction() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS}, worker_pid, worker_start, claimed_by,"
                                f" lease_expires < {self._now} FROM {TABLE} WHERE state = ?", (RUNNING,)).fetchall()
            for *row, pid, start, claimed_by, expired in rows:
                if claimed_by is None or claimed_by == node:
                    if Worker(pid or 0, start or 0).alive():
                        continue
                elif not expired:
                    continue
                if row[5] >= self.max_attempts:
                    queued = self._decoded(conn, tuple(row))
                    if queued is not None:
                        conn.execute(f"DELETE FROM {TABLE} WHERE id = ?", (queued.id,))
                        dropped.append(queued)
                else:
                    conn.execute(f"UPDATE {TABLE} SET state = ?, worker_pid = NULL, claimed_by = NULL,"
                                 " lease_expires = NULL WHERE id = ?", (QUEUED, row[0]))
        return dropped
