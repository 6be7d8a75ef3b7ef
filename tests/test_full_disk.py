"""`provision DOMAIN` on a full filesystem: one line naming the path, non-zero exit; once there is room it converges.

A real small filesystem: a tmpfs mounted here with a size limit (needs root),
filled with a file so that only some KiB are left; the real CLI, terraform and
the embedded provider on the simulated hypervisor. The levels of free space
are fractions of what a whole apply writes, measured first, so each run stops
at a different step (lock, rendered files, terraform state, the job queue).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import EXAMPLE, REPO

SIZE_KIB = 4096
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def provision(root: Path, domains: Path) -> subprocess.CompletedProcess[str]:
    # Without the warm provider: its socket under the root would keep the tmpfs busy (umount fails)
    # until it idles out (docs/scale-out.md).
    return subprocess.run([str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "-q",
                           "example.test"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PROVISION_WARM_PROVIDER": "0"})


def used_kib(mount: Path) -> int:
    stat = os.statvfs(mount)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    """A fresh tmpfs of SIZE_KIB, unmounted at the end whatever happens."""
    path = tmp_path / "disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_KIB}k,mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def domains(tmp_path: Path) -> Path:
    directory = tmp_path / "domains"
    shutil.copytree(EXAMPLE, directory / "example.test")
    return directory


@pytest.fixture(scope="module")
def apply_kib(tmp_path_factory: pytest.TempPathFactory) -> int:
    """What one apply of example.test writes under its root, on a tmpfs (KiB)."""
    base = tmp_path_factory.mktemp("measure")
    path = base / "disk"
    path.mkdir()
    shutil.copytree(EXAMPLE, base / "domains" / "example.test")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_KIB}k", "tmpfs", str(path)], check=True)
    try:
        before = used_kib(path)
        done = provision(path / "root", base / "domains")
        assert done.returncode == 0, done.stderr
        return used_kib(path) - before
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(mount: Path, leave_kib: int) -> Path:
    """A file taking all of `mount` but `leave_kib` KiB."""
    filler = mount / "filler"
    with filler.open("wb") as stream:
        while used_kib(mount) < SIZE_KIB - leave_kib:
            try:
                stream.write(b"\0" * 4096)
                stream.flush()
            except OSError:
                break
    return filler


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.35, 0.6, 0.9])
def test_full_disk_is_one_line_and_a_rerun_converges(mount: Path, domains: Path, apply_kib: int,
                                                     fraction: float) -> None:
    root = mount / "root"
    filler = fill(mount, int(apply_kib * fraction) // 4 * 4)
    failed = provision(root, domains)
    assert failed.returncode != 0, failed.stdout
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, failed.stderr
    assert lines[0].startswith("provision: error: ") and str(root) in lines[0], lines[0]
    print(lines[0])
    assert any(word in lines[0] for word in ("ENOSPC", "SQLITE_FULL", "SQLITE_IOERR", "no space left")), lines[0]

    filler.unlink()
    again = provision(root, domains)
    assert again.returncode == 0, again.stderr
    # created, or updated when the failed run had got as far as the guest, or unchanged.
    outcome = again.stdout.splitlines()[0].removeprefix("example.test: ").split()[0]
    assert outcome in ("created", "updated", "unchanged"), again.stdout
    # Nothing left half-written: the next run finds everything in place.
    assert provision(root, domains).stdout.splitlines()[0] == "example.test: unchanged"
    leftovers = [p for p in root.rglob(".*") if p.name not in (".terraform", ".terraform.lock.hcl")
                 and ".terraform" not in p.relative_to(root).parts[:-1]]
    assert not leftovers, "a temporary file of an atomic write was left behind"
