"""provisioner/sqlite.py on real SQLite files: connect_wal, and write_transaction, the one BEGIN IMMEDIATE block
behind both api/db.py Database.transaction and the post-boot queue's writes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from provisioner.sqlite import connect_wal, write_transaction


def _open(path: Path, timeout: float = 30) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    return conn


def _values(path: Path) -> list[int]:
    conn = _open(path)
    try:
        return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


def test_the_block_commits_and_holds_the_write_lock_until_then(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn, other = _open(path), _open(path, timeout=0)
    try:
        with write_transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            # IMMEDIATE: the lock is taken at BEGIN, not at the first write, so no other writer gets in.
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("INSERT INTO t VALUES (2)")
        other.execute("INSERT INTO t VALUES (3)")
    finally:
        conn.close()
        other.close()
    assert _values(path) == [1, 3]


def test_a_raising_block_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = _open(path)
    try:
        with pytest.raises(KeyError), write_transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            raise KeyError("refused")
        assert not conn.in_transaction
    finally:
        conn.close()
    assert _values(path) == []


def test_an_inner_block_joins_the_open_transaction(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = _open(path)
    try:
        with pytest.raises(KeyError), write_transaction(conn):
            with write_transaction(conn):
                conn.execute("INSERT INTO t VALUES (1)")
            assert conn.in_transaction  # the inner block did not commit on its own
            raise KeyError("refused")
    finally:
        conn.close()
    assert _values(path) == []


def _open_new_file(args: tuple[str, float]) -> str:
    path, start = args
    while time.time() < start:  # all at once, on a file none of them has created yet
        pass
    conn = connect_wal(Path(path))
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_processes_opening_a_new_file_together_all_get_wal(tmp_path: Path) -> None:
    """Regression: SQLite refuses the switch to WAL at once ('database is locked', no busy wait) while another
    process switches the new file; two API processes starting together failed on it now and then."""
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for round_ in range(10):
            start = time.time() + 0.3
            modes = pool.map(_open_new_file, [(str(tmp_path / f"{round_}.db"), start)] * 8)
            assert modes == ["wal"] * 8
