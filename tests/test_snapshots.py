"""`provision snapshot / snapshots / restore / snapshot-delete` on the simulated hypervisor.

The real CLI, terraform and the embedded provider on libvirt's test driver.
The test driver holds no disk bytes, so the tests write the disk's file at the
path the hypervisor gives its volume, as a guest writing its disk would: the
snapshot copies that file and a restore puts it back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from provisioner.cli import main
from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.provider.simulator import open_readonly

DOMAIN = "example.test"


HOLD_LOCK = ("import fcntl, os, sys, time\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\n"
             "print('locked', flush=True)\n"
             "time.sleep(600)\n")


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding the flock on `path` (as `provision DOMAIN` does while it applies), once it has it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def provision(root: Path, domains: Path, *args: str) -> int:
    return main(["--root", str(root), "--domains", str(domains), "-q", *args])


def guest(root: Path) -> tuple[Path, int]:
    """The guest's disk file (where the hypervisor says its volume is) and its libvirt run state."""
    conn = open_readonly(Layout(root).simulator_uri)
    try:
        dom = conn.lookupByName(DOMAIN)
        pool = conn.storagePoolLookupByName("provisioner")
        disk = next(v for v in pool.listAllVolumes() if "-disk-" in v.name())
        return Path(disk.path()), dom.state()[0]
    finally:
        conn.close()


@pytest.fixture
def applied(root: Path, domains: Path) -> Path:
    """example.test applied on the simulator, its disk file holding b'before'; the disk file."""
    assert provision(root, domains, DOMAIN) == 0
    disk, state = guest(root)
    assert state == 1  # running
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.write_bytes(b"before" * 1000)
    return disk


def snapshots_dir(root: Path) -> Path:
    return root / "domains" / DOMAIN / "snapshots"


def test_snapshot_restore_puts_the_disk_back(root: Path, domains: Path, applied: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", DOMAIN, "s1") == 0
    assert guest(root)[1] == 1  # resumed after the copy
    applied.write_bytes(b"after")
    capsys.readouterr()
    assert provision(root, domains, "snapshots", DOMAIN, "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "s1" and listed["was_running"] is True
    [disk] = listed["disks"]
    assert disk["size"] == 6000 and disk["path"] == str(applied) and len(disk["sha256"]) == 64

    assert provision(root, domains, "restore", DOMAIN, "s1") == 0
    assert applied.read_bytes() == b"before" * 1000
    assert guest(root)[1] == 1  # started again
    # The domain is still what Terraform applied: a re-apply changes nothing.
    assert provision(root, domains, DOMAIN) == 0
    assert "unchanged" in capsys.readouterr().out

    assert provision(root, domains, "snapshot-delete", DOMAIN, "s1") == 0
    assert list(snapshots_dir(root).iterdir()) == []
    assert provision(root, domains, "restore", DOMAIN, "s1") == 1
    assert "no snapshot 's1'" in capsys.readouterr().err


def test_default_name_and_listing(root: Path, domains: Path, applied: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", DOMAIN) == 0
    capsys.readouterr()
    assert provision(root, domains, "snapshots", DOMAIN) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NAME") and len(lines) == 2
    name = lines[1].split()[0]
    assert len(name) == 16 and name.endswith("Z") and "T" in name
    manifest = json.loads((snapshots_dir(root) / name / "manifest.json").read_text())
    assert manifest["domain"] == DOMAIN
    assert oct((snapshots_dir(root) / name / "vda.img").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "_x", "a:b", "", "x" * 65, "a b", "ü"])
def test_bad_names_are_refused_and_nothing_is_written(root: Path, domains: Path, applied: Path, name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", DOMAIN, name) == 2
    err = capsys.readouterr().err
    assert "snapshot name" in err and len(err) < 300
    assert not snapshots_dir(root).exists() or list(snapshots_dir(root).iterdir()) == []
    assert provision(root, domains, "restore", DOMAIN, name) == 2
    assert provision(root, domains, "snapshot-delete", DOMAIN, name) == 2


def test_unknown_domain_and_taken_name(root: Path, domains: Path, applied: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", "other.test") == 1
    assert "no domain 'other.test'" in capsys.readouterr().err
    assert provision(root, domains, "snapshot", DOMAIN, "s1") == 0
    assert provision(root, domains, "snapshot", DOMAIN, "s1") == 1
    assert "already has a snapshot 's1'" in capsys.readouterr().err


def test_count_limit(root: Path, domains: Path, applied: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROVISION_SNAPSHOTS_MAX", "2")
    assert provision(root, domains, "snapshot", DOMAIN, "a") == 0
    assert provision(root, domains, "snapshot", DOMAIN, "b") == 0
    assert provision(root, domains, "snapshot", DOMAIN, "c") == 1
    assert "PROVISION_SNAPSHOTS_MAX" in capsys.readouterr().err
    assert sorted(p.name for p in snapshots_dir(root).iterdir()) == ["a", "b"]
    assert provision(root, domains, "snapshot-delete", DOMAIN, "a") == 0
    assert provision(root, domains, "snapshot", DOMAIN, "c") == 0
    monkeypatch.setenv("PROVISION_SNAPSHOTS_MAX", "many")
    assert provision(root, domains, "snapshot", DOMAIN, "d") == 2
    assert "PROVISION_SNAPSHOTS_MAX" in capsys.readouterr().err


def test_a_running_apply_refuses_snapshot_and_restore(root: Path, domains: Path, applied: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", DOMAIN, "s1") == 0
    applied.write_bytes(b"after")
    # The lock `provision DOMAIN` holds while it applies (pipeline.domain_lock), held by another process.
    lock = root / "domains" / DOMAIN / "lock"
    holder = hold_lock(lock)
    try:
        assert provision(root, domains, "snapshot", DOMAIN, "s2") == 1
        assert provision(root, domains, "restore", DOMAIN, "s1") == 1
        err = capsys.readouterr().err
        assert err.count(f"domain {DOMAIN} is locked by process") == 2
    finally:
        holder.kill()
        holder.wait()
    assert applied.read_bytes() == b"after"
    assert sorted(p.name for p in snapshots_dir(root).iterdir()) == ["s1"]
    assert guest(root)[1] == 1


def test_a_damaged_snapshot_is_not_restored(root: Path, domains: Path, applied: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "snapshot", DOMAIN, "s1") == 0
    applied.write_bytes(b"after")
    (snapshots_dir(root) / "s1" / "vda.img").write_bytes(b"tampered")
    assert provision(root, domains, "restore", DOMAIN, "s1") == 1
    assert "sha256 is not the manifest's" in capsys.readouterr().err
    assert applied.read_bytes() == b"after" and guest(root)[1] == 1


def test_a_stopped_guest_is_snapshotted_as_is(root: Path, domains: Path, applied: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from provisioner.provider.simulator import transaction
    with transaction(Layout(root).simulator_uri) as session:
        session.conn.lookupByName(DOMAIN).destroy()
    assert provision(root, domains, "snapshot", DOMAIN, "off") == 0
    assert guest(root)[1] == 5  # still shut off
    capsys.readouterr()
    assert provision(root, domains, "snapshots", DOMAIN) == 0
    assert "shut off" in capsys.readouterr().out


@pytest.fixture
def small_fs(root: Path, applied: Path) -> Iterator[Path]:
    """The domain's snapshots/ directory on a 1 MiB tmpfs (needs root), unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = snapshots_dir(root)
    path.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1024k,mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_no_room_refuses_before_copying(root: Path, domains: Path, applied: Path, small_fs: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    applied.write_bytes(os.urandom(2 << 20))
    assert provision(root, domains, "snapshot", DOMAIN, "big") == 1
    err = capsys.readouterr().err
    assert str(small_fs) in err and "make room" in err
    assert list(small_fs.iterdir()) == []
    assert guest(root)[1] == 1
