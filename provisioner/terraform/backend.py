"""Terraform state in PostgreSQL (Terraform's own `pg` backend), when the API's `database:` is set.

Every workspace then keeps its state in a schema of its own in that
database, named from what it manages (`tf_domain_web1`, `tf_volume_vol_…`),
so API nodes on different roots that manage the same domain share one state
and Terraform's advisory lock on it. The connection string (it may hold a
password) reaches Terraform only through the PG_CONN_STR environment
variable of each run: backend.tf names the schema and nothing else, and
`terraform init` records no connection string in .terraform/.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from provisioner.render.hcl import hcl

BACKEND_FILE = "backend.tf"
CONN_ENV = "PG_CONN_STR"
# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes: two long names could meet in one schema.
MAX_SCHEMA = 63
_DIGEST = 10
KINDS = ("domain", "volume", "network", "shared")
ROOT_ID_FILE = "state-id"
# How long an apply waits for another node's apply of the same workspace (Terraform's state lock).
LOCK_TIMEOUT = "600s"


def conn_str(uri: str) -> str:
    """The lib/pq form of a `database:` URI (postgresql:///DB?host=/socket/dir): Terraform's pg backend.

    lib/pq asks for TLS unless told otherwise, which a unix socket never
    offers: a URI reaching its server by socket (host=/dir, or no host) and
    naming no sslmode gets sslmode=disable.
    """
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    host = dict(query).get("host", parts.hostname or "")
    if "sslmode" not in dict(query) and (host == "" or host.startswith("/")):
        query.append(("sslmode", "disable"))
    # Built by hand: urlunsplit drops the `//` of an empty host, which lib/pq then misreads.
    return f"postgres://{parts.netloc}{parts.path}" + (f"?{urlencode(query, safe='/')}" if query else "")


def schema_name(kind: str, name: str) -> str:
    """The PostgreSQL schema of workspace `name` of `kind`: tf_<kind>_<name>, a valid identifier.

    Lowercase letters, digits and `_` only, at most 63 bytes. A name that
    had to change to fit (any other character, or too long) gets a digest of
    the exact name appended, so two names never share a schema.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown workspace kind {kind!r}")
    prefix = f"tf_{kind}_"
    clean = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if clean == name and len(prefix) + len(name) <= MAX_SCHEMA and name:
        return prefix + name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST]
    return f"{prefix}{clean[:MAX_SCHEMA - len(prefix) - _DIGEST - 1]}_{digest}"


@dataclass(frozen=True)
class PgState:
    """One workspace's state in PostgreSQL: the connection string (secret) and its schema."""

    conn_str: str
    schema: str

    def __repr__(self) -> str:  # the connection string may hold a password: never in a log or a traceback
        return f"PgState(schema={self.schema!r})"

    def backend_tf(self) -> str:
        """backend.tf: the pg backend naming the schema (the connection string comes from PG_CONN_STR)."""
        from provisioner.templates import environment  # Jinja2: only for a workspace on PostgreSQL

        env = environment(None, {"hcl": hcl}, trim_blocks=True, lstrip_blocks=True)
        return env.get_template("terraform/backend.tf.j2").render(schema=self.schema)

    def env(self) -> dict[str, str]:
        """What Terraform's environment needs to reach the state."""
        return {CONN_ENV: self.conn_str}


@dataclass(frozen=True)
class StateDatabase:
    """The PostgreSQL database every workspace keeps its state in (from the API's `database:` URI)."""

    conn_str: str

    @classmethod
    def from_uri(cls, uri: str) -> "StateDatabase":
        """From a `database:` value (already checked by api.db.check_uri)."""
        return cls(conn_str(uri))

    def __repr__(self) -> str:
        return "StateDatabase(<conn_str hidden>)"

    def workspace(self, kind: str, name: str) -> PgState:
        """Where workspace `name` of `kind` keeps its state."""
        return PgState(self.conn_str, schema_name(kind, name))

    @contextmanager
    def lock(self, workspace: tuple[str, str]) -> Iterator[None]:
        """Hold a session advisory lock named after the workspace's schema, for every process of every root.

        Terraform's own lock covers one command; this one covers a read of
        the state, the plan rendered from it and its apply. Its key is a
        64-bit hash of the schema name (Terraform's locks use small ids).
        """
        import psycopg  # only with `database:` set, where it is installed (the [postgresql] extra)

        with psycopg.connect(self.conn_str, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (schema_name(*workspace),))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (schema_name(*workspace),))


def root_id(terraform_dir: Path) -> str:
    """This root's own random id (`<root>/terraform/state-id`, made once): names its shared workspace's schema.

    Not derived from the root's path: two API nodes may both use /vms, and
    each one's shared workspace must stay its own.
    """
    path = terraform_dir / ROOT_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    terraform_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole, then linked into place: another process of this root reads all of it or nothing.
    fd, tmp = tempfile.mkstemp(prefix=f".{ROOT_ID_FILE}.", dir=terraform_dir)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(4) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process of this root made it first: theirs counts
    finally:
        os.unlink(tmp)
    return path.read_text().strip()
