"""The API's own `api_*` tables: SQLite under the root (layout.state_db, shared with the post-boot queue), or a
PostgreSQL database shared by several roots (`database:` in config.yaml, docs/scale-out.md).

Every API record is a frozen dataclass with `id`, `project_id` and `name`
columns for lookups; the rest is stored as JSON text. One connection per
thread (waitress serves requests on several threads; neither driver's
connections are shared across them).

Callers write one SQL: SQLite's, restricted to what PostgreSQL also runs once
`Dialect.translate` has rewritten the few spellings that differ (placeholders,
float and autoincrement column types). Beyond that, callers only ask the
Dialect for a fragment (`rowid_column`, `skip_locked`), whether the database is
`shared` with other roots (caches), and whether it is SQLite (the job queue's
migration of an old SQLite-only table).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sqlite3
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, Iterable, Iterator, Protocol, TypeVar

from provisioner.errors import InputError
from provisioner.sqlite import connect_wal, write_transaction

T = TypeVar("T")

# Seconds to wait for PostgreSQL to accept a connection: a database that is gone fails the request (503) at once
# rather than hanging it.
CONNECT_TIMEOUT = 5
# The advisory lock every PostgreSQL write transaction takes first: what SQLite's BEGIN IMMEDIATE is, one writer
# at a time, so a check and the write it allows (quotas, unique names) cannot interleave with another's.
WRITE_LOCK = 0x70726F76  # "prov"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _psycopg(where: str) -> ModuleType:
    """The PostgreSQL driver, imported only when a `database:` is set (it costs every CLI command ~0.2 s)."""
    try:
        import psycopg
    except ImportError:  # the `postgresql` extra is optional: SQLite needs no driver
        raise InputError(where, "key 'database': PostgreSQL needs psycopg: pip install "
                                "'provisioner[postgresql]'") from None
    return psycopg


class Cursor(Protocol):
    """What callers use of a cursor, the same on both drivers."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What callers use of a connection, the same on both drivers."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, args: Any = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Any]) -> Any: ...

    def close(self) -> None: ...


_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)")


@dataclasses.dataclass(frozen=True)
class Dialect:
    """The differences between the two databases' SQL, all in one place."""

    name: str
    rowid_column: str  # appended to a CREATE TABLE whose rows are listed in insertion order (ORDER BY rowid)
    skip_locked: str  # appended to the job queue's claiming SELECT

    def translate(self, sql: str) -> str:
        """`sql` as this database runs it (callers write SQLite's)."""
        return sql if self.name == "sqlite" else _postgresql_sql(sql)


@functools.lru_cache(maxsize=1024)  # every statement runs through it: the same few hundred texts, rewritten once
def _postgresql_sql(sql: str) -> str:
    """SQLite's SQL as PostgreSQL runs it (Dialect.translate)."""
    if "%" in sql:
        raise ValueError("SQL with a literal % (psycopg reads it as a placeholder)")
    sql = sql.replace("?", "%s")
    sql = _NAMED.sub(r"%(\1)s", sql)
    # PostgreSQL's REAL is 4 bytes: time.time() would lose its seconds' digits (and rows their order);
    # its INTEGER too: a claimer's start time in clock ticks passes 2**31 after 248 days up. SQLite's are 8.
    sql = sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return re.sub(r"\bINTEGER\b", "BIGINT", sql)


SQLITE = Dialect("sqlite", rowid_column="", skip_locked="")
# SQLite's rowid is implicit; PostgreSQL has none, so tables listed in insertion order get a column of that name.
POSTGRESQL = Dialect("postgresql", rowid_column=", rowid BIGSERIAL", skip_locked=" FOR UPDATE OF q SKIP LOCKED")


def _nul_free(value: Any) -> Any:
    """A string parameter as PostgreSQL can store it: its text holds no NUL, which SQLite's does (a name, or an
    id from a URL path, may carry one). NUL becomes \\x01\\x02 and \\x01 itself \\x01\\x01: no two strings meet,
    so lookups escaped the same way still match. JSON from json.dumps holds neither character (it escapes
    control characters), so the records read back are unchanged."""
    if isinstance(value, str) and ("\x00" in value or "\x01" in value):
        return value.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")
    return value


def _pg_args(args: Any) -> Any:
    if isinstance(args, dict):
        return {key: _nul_free(value) for key, value in args.items()}
    return [_nul_free(value) for value in args] if args else None


class _PgConnection:
    """A psycopg connection in autocommit mode, answering like sqlite3's (Connection)."""

    def __init__(self, conn: Any):
        self.conn = conn

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus  # imported with psycopg already: a dictionary look-up

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, args: Any = ()) -> Cursor:
        return self.conn.execute(POSTGRESQL.translate(sql), _pg_args(args))

    def executemany(self, sql: str, rows: Iterable[Any]) -> Any:
        cur = self.conn.cursor()
        cur.executemany(POSTGRESQL.translate(sql), [_pg_args(row) for row in rows])
        return cur

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _pg_write_transaction(conn: _PgConnection) -> Iterator[_PgConnection]:
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def check_uri(uri: Any, where: str) -> str:
    """A `database:` value of config.yaml, checked: a libpq URI of PostgreSQL naming its database."""
    if not isinstance(uri, str) or not uri.startswith(POSTGRES_SCHEMES):
        raise InputError(where, f"key 'database': {uri!r} is not a postgresql:// URI "
                                "(postgresql:///DBNAME?host=/socket/dir), or leave it out for SQLite under the root")
    psycopg = _psycopg(where)
    try:
        params = psycopg.conninfo.conninfo_to_dict(uri)
    except psycopg.ProgrammingError as exc:
        raise InputError(where, f"key 'database': malformed URI: {_one_line(exc)}") from None
    if not params.get("dbname"):
        raise InputError(where, "key 'database': the URI names no database (postgresql:///DBNAME?host=...)")
    return uri


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Database:
    """Thread-local connections to one SQLite file, in WAL mode, or to one PostgreSQL database (`uri`)."""

    def __init__(self, path: Path, uri: str | None = None):
        self.path = path
        self.uri = uri
        self.dialect = POSTGRESQL if uri else SQLITE
        self._driver = _psycopg("config.yaml") if uri else None
        # What the driver raises for a locked, failed or unreachable database: callers that must outlive one
        # (the job threads) catch these.
        self.errors: tuple[type[Exception], ...] = (self._driver.Error,) if self._driver else (sqlite3.Error,)
        # What it raises when the server cannot be reached (a request answers 503); SQLite, a file, has no such case.
        self.unavailable: tuple[type[Exception], ...] = (self._driver.OperationalError,) if self._driver else ()
        self._local = threading.local()
        self._opened: list[Connection] = []  # every thread's, for close()
        self._opened_lock = threading.Lock()

    def connect(self) -> Connection:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        conn = getattr(self._local, "conn", None)
        # A PostgreSQL connection broken by a database restart is replaced at the next use, not kept failing.
        if conn is not None and not (self._driver is not None and conn.conn.broken):
            return conn
        fresh = self._open()
        with self._opened_lock:
            if conn is not None:
                self._opened.remove(conn)
                conn.close()
            self._opened.append(fresh)
        self._local.conn = fresh
        return fresh

    def _open(self) -> Connection:
        if self._driver is not None:
            return _PgConnection(self._driver.connect(self.uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT))
        # check_same_thread off only so close() may close it from another thread: one thread uses it.
        return connect_wal(self.path, check_same_thread=False)

    def close(self) -> None:
        """Close every thread's connection (an SQLite one holds three file descriptors: the file, -wal and -shm).
        For when the threads that used them are done: a process that builds apps one after another
        (the tests) runs out of descriptors otherwise, since the server's threads outlive a closed server."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    @property
    def shared(self) -> bool:
        """Whether other roots' API processes write here too (PostgreSQL). Their writes bump none of this
        root's change counters (api/change_counter.py, a file under the root): a per-process cache that trusts
        those counters must read the database again instead."""
        return self.uri is not None

    def check(self, where: str) -> None:
        """Connect once, or raise an InputError naming `where` (config.yaml) and its `database` key."""
        if self.uri is None:
            return
        try:
            self.connect()
        except self.errors as exc:
            raise InputError(where, f"key 'database': cannot connect: {_one_line(exc)}") from None

    def create(self, statement: str) -> None:
        """Run one `CREATE … IF NOT EXISTS`. On PostgreSQL, under the write lock: two processes creating the same
        table at once (roots starting together on a new database) collide in its catalog otherwise."""
        if self.dialect is SQLITE:
            self.connect().execute(statement)
            return
        with self.transaction() as conn:
            conn.execute(statement)

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction on this thread's connection, one writer at a time (SQLite: BEGIN IMMEDIATE, see
        provisioner.sqlite.write_transaction; PostgreSQL: an advisory lock taken first), so a check and the insert
        it allows cannot interleave with another's; inside an open transaction, joins it."""
        conn = self.connect()
        if isinstance(conn, _PgConnection):
            return _pg_write_transaction(conn)
        return write_transaction(conn)


class Table(Generic[T]):
    """One `api_<name>` table of dataclass records of type `cls`, scoped by the field `scope`."""

    def __init__(self, db: Database, name: str, cls: type[T], scope: str = "project_id"):
        self.db = db
        self.table = f"api_{name}"
        self.cls = cls
        self.scope = scope
        self._fields = frozenset(f.name for f in dataclasses.fields(cls))  # once, not per loaded row
        db.create(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id TEXT PRIMARY KEY, project_id TEXT, "
            "name TEXT, created REAL NOT NULL, data TEXT NOT NULL)")

    def _row(self, record: T) -> tuple[str, str | None, str | None, str]:
        data = dataclasses.asdict(record)
        return data["id"], data.get(self.scope), data.get("name"), json.dumps(data)

    def _load(self, data: str) -> T:
        values = {k: v for k, v in json.loads(data).items() if k in self._fields}
        return self.cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def insert(self, record: T) -> T:
        """Add `record`; the driver's IntegrityError if its id exists."""
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
            where.append(f"project_id IN ({', '.join('?' * len(projects))})" if projects else "1 = 0")
            args.extend(projects)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        sql = f"SELECT data FROM {self.table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._load(row[0]) for row in self.db.connect().execute(sql + " ORDER BY created, id", args)]

