"""SQLite under the root (layout.state_db, shared with the post-boot queue): the API's own `api_*` tables.

Every API record is a frozen dataclass with `id`, `project_id` and `name`
columns for lookups; the rest is stored as JSON. One connection per thread
(waitress serves requests on several threads; sqlite3 connections are not
shared across them).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Generic, Iterable, TypeVar

from provisioner.sqlite import write_transaction

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000


class Database:
    """Thread-local connections to one SQLite file, in WAL mode."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []  # every thread's, for close()
        self._opened_lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # check_same_thread off only so close() may close it from another thread: one thread uses it.
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (each holds three file descriptors: the file, -wal and -shm).
        For when the threads that used them are done: a process that builds apps one after another
        (the tests) runs out of descriptors otherwise, since the server's threads outlive a closed server."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction on this thread's connection (provisioner.sqlite.write_transaction: BEGIN
        IMMEDIATE, so a check and the insert it allows cannot interleave with another's); inside an open
        transaction, joins it."""
        return write_transaction(self.connect())


class Table(Generic[T]):
    """One `api_<name>` table of dataclass records of type `cls`, scoped by the field `scope`."""

    def __init__(self, db: Database, name: str, cls: type[T], scope: str = "project_id"):
        self.db = db
        self.table = f"api_{name}"
        self.cls = cls
        self.scope = scope
        self._fields = frozenset(f.name for f in dataclasses.fields(cls))  # once, not per loaded row
        db.connect().execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id TEXT PRIMARY KEY, project_id TEXT, "
            "name TEXT, created REAL NOT NULL, data TEXT NOT NULL)")

    def _row(self, record: T) -> tuple[str, str | None, str | None, str]:
        data = dataclasses.asdict(record)
        return data["id"], data.get(self.scope), data.get("name"), json.dumps(data)

    def _load(self, data: str) -> T:
        values = {k: v for k, v in json.loads(data).items() if k in self._fields}
        return self.cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def insert(self, record: T) -> T:
        """Add `record`; sqlite3.IntegrityError if its id exists."""
        self.db.connect().execute(f"INSERT INTO {self.table} (id, project_id, name, data, created) "
                                  "VALUES (?, ?, ?, ?, ?)", (*self._row(record), time.time()))
        return record

    def update(self, record: T) -> T:
        """Replace the stored record with the same id."""
        rid, project, name, data = self._row(record)
        self.db.connect().execute(f"UPDATE {self.table} SET project_id = ?, name = ?, data = ? WHERE id = ?",
                                  (project, name, data, rid))
        return record

    def get(self, record_id: str) -> T | None:
        """The record with this id, or None."""
        row = self.db.connect().execute(f"SELECT data FROM {self.table} WHERE id = ?", (record_id,)).fetchone()
        return self._load(row[0]) if row else None

    def delete(self, record_id: str) -> bool:
        """Remove the record; False if there was none."""
        cur = self.db.connect().execute(f"DELETE FROM {self.table} WHERE id = ?", (record_id,))
        return cur.rowcount > 0

    def count(self, project: str) -> int:
        """How many records the project (the `scope` value) has, without loading them."""
        row = self.db.connect().execute(f"SELECT COUNT(*) FROM {self.table} WHERE project_id = ?", (project,))
        return row.fetchone()[0]

    def list(self, projects: Iterable[str] | None = None, name: str | None = None) -> list[T]:
        """Records in creation order, optionally of some projects only and/or with one name."""
        where, args = [], []
        if projects is not None:
            projects = list(projects)
            where.append(f"project_id IN ({', '.join('?' * len(projects))})" if projects else "0")
            args.extend(projects)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        sql = f"SELECT data FROM {self.table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._load(row[0]) for row in self.db.connect().execute(sql + " ORDER BY created, id", args)]

