"""SQLite helpers shared by the engine and the API (which sits above it and may import it, not the reverse)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator


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
