"""SQLite helpers shared by the engine and the API (which sits above it and may import it, not the reverse)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

BUSY_TIMEOUT_MS = 30_000


def connect_wal(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """An autocommit connection to the database file `path` (its directory made 0700 if missing), in WAL mode,
    waiting up to BUSY_TIMEOUT_MS for locks. Switching to WAL is retried within that time too: SQLite answers
    'database is locked' at once, without its busy handler, when another process opens a new file at the
    same moment (two API processes or a worker starting together)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                           check_same_thread=check_same_thread)
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on `conn` (an autocommit connection, isolation_level=None): BEGIN IMMEDIATE takes
    SQLite's write lock at once, so what the block reads stays true until it commits, across threads and
    processes (a check and the write it allows cannot interleave with another's). Rolled back if the block
    raises; inside an already open transaction, joins it."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
