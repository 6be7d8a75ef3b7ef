"""A real PostgreSQL for tests: a cluster in a temporary directory, reached by its unix socket only.

initdb refuses to run as root, so as root the cluster belongs to Debian's
`postgres` user (the directory is chowned to it). `listen_addresses` is
empty: the server opens no TCP port at all, only its socket in the cluster's
directory. Everything is removed when the fixture ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator


def _newest_bin() -> Path:
    """The newest installed server's bin directory (Debian 12 ships 15, Ubuntu 24.04 16), or 15's when none is."""
    installed = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if d.parent.name.isdigit()]
    return max(installed, key=lambda d: int(d.parent.name), default=Path("/usr/lib/postgresql/15/bin"))


BIN = _newest_bin()
BINARIES = ("initdb", "pg_ctl", "postgres")
SYSTEM_USER = "postgres"  # Debian's package creates it; initdb runs as it when the tests run as root


@dataclass(frozen=True)
class Postgres:
    """A running cluster: its socket directory, and the role tests connect as."""

    socket_dir: Path
    user: str
    data: Path
    run: Callable[..., None]

    def start(self) -> None:
        """Start the server (again): unix socket only, in the cluster's directory, no TCP at all."""
        # fsync off: a test cluster is thrown away.
        options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -c fsync=off"
        self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.data.parent / "log"),
                 "-w", "start")

    def stop(self) -> None:
        """Stop the server now (immediate shutdown, as a crash), for tests of a database gone away."""
        self.run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        """Whether the server runs (pg_ctl status: 0 running, 3 stopped)."""
        return subprocess.run([str(BIN / "pg_ctl"), "-D", str(self.data), "status"], capture_output=True,
                              **_demoted()).returncode == 0

    def uri(self, dbname: str) -> str:
        """The libpq URI of a database of this cluster (a `database:` value of config.yaml)."""
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}"

    def createdb(self) -> str:
        """A new empty database, owned by `user`; returns its URI."""
        import psycopg  # only the PostgreSQL tests need the driver

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.uri("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)


def skip_reason() -> str | None:
    """Why a PostgreSQL cannot be started here, or None."""
    missing = [name for name in BINARIES if not (BIN / name).exists()]
    if missing:
        names = ", ".join(str(BIN / m) for m in missing)
        return f"missing {names}: run `bin/install-deps --test` (Debian's postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and no `{SYSTEM_USER}` user to run initdb as (Debian's postgresql creates it)"
    try:
        import psycopg  # noqa: F401  (only its presence is checked here)
    except ImportError:
        return "psycopg is not installed: pip install -e '.[test]'"
    return None


def _demoted() -> dict[str, Any]:
    """subprocess.run's arguments to run as the cluster's owner: `postgres` when the tests run as root."""
    if os.geteuid() != 0:
        return {}
    owner = pwd.getpwnam(SYSTEM_USER)
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster started for the duration of the block, then stopped and removed."""
    base = Path(tempfile.mkdtemp(prefix="provisioner-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    demote = _demoted()
    user = pwd.getpwuid(os.geteuid()).pw_name
    if demote:
        for path in (base, sockets):
            os.chown(path, demote["user"], demote["group"])
        user = SYSTEM_USER
    os.chmod(base, 0o755)  # the socket must be reachable by the (root) test process through it

    def run(*argv: str) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, **demote)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")

    try:
        run(str(BIN / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync")
        cluster = Postgres(sockets, user, data, run)
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
