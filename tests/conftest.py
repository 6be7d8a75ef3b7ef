"""Shared fixtures: a scratch root and a copy of example.test to mutate."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

import pg
import sshvirt

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example.test"

# Each test's root gets its own warm provider (about 40 MB); at the default 300 s idle, a few hundred
# tests would keep gigabytes of them alive. Inherited by every `provision` the tests start.
os.environ.setdefault("PROVISION_WARM_PROVIDER_IDLE", "30")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty engine root (nothing exists yet)."""
    return tmp_path / "root"


@pytest.fixture
def domains(tmp_path: Path) -> Path:
    """A domains directory holding a copy of example.test."""
    directory = tmp_path / "domains"
    shutil.copytree(EXAMPLE, directory / "example.test")
    return directory


def tree_digest(path: Path) -> str:
    """Digest of every file name, mode and content below `path`."""
    sha = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        sha.update(str(item.relative_to(path)).encode())
        sha.update(oct(item.lstat().st_mode).encode())
        if item.is_file():
            sha.update(item.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope="session")
def ssh_hypervisors() -> Iterator[list[sshvirt.Hypervisor]]:
    """Two real libvirtd, each in its own mount and network namespaces, reached over qemu+ssh (`.uri`),
    for the whole session."""
    with sshvirt.hypervisors(2) as hypervisors:
        yield hypervisors


@pytest.fixture(scope="session")
def real_libvirtd(ssh_hypervisors: list[sshvirt.Hypervisor]) -> sshvirt.Hypervisor:
    """The first of the session's hypervisors, for a test that needs one real libvirtd: over qemu+ssh (`.uri`), or
    from inside its namespaces (`.enter`, `sshvirt.LOCAL_URI`). No test touches the host's own libvirt state."""
    return ssh_hypervisors[0]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[pg.Postgres]:
    """A real PostgreSQL (unix socket only, in a temporary directory) for the whole session; skipped, with the
    reason, only where its binaries or driver are missing."""
    reason = pg.skip_reason()
    if reason:
        pytest.skip(reason)
    with pg.postgres() as cluster:
        yield cluster


@pytest.fixture
def postgres_uri(postgres_cluster: pg.Postgres) -> str:
    """The URI of a new empty database of the session's PostgreSQL (one per test: tests never share rows)."""
    return postgres_cluster.createdb()
