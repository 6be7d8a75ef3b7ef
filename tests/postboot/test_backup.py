"""Site backups against the real loopback guest (sshd + atd on 127.0.0.1, a test user; see loopback.py):
`make backup` run by atd through the post-boot queue, the archive brought back, checked, stored,
rotated and restored as data.tar.gz (docs/backups.md). The guest's `cloud-init` stand-in is the only mock."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tarfile
from dataclasses import fields, replace
from pathlib import Path

import pytest

# The loopback guest's fixtures, imported so pytest finds them (no conftest.py here: other test
# modules import the top-level conftest by name).
from loopback import (DOMAIN, EXAMPLE, Env, atd, conf_set, domain_keys, env, guest_user, needs_root,  # noqa: F401
                      session_dir, sshd)
from provisioner import pipeline
from provisioner.backups.errors import BackupCorrupt, NoSuchVersion
from provisioner.backups.schedule import BackupJobFailed, restore, schedule_backup
from provisioner.backups.store import MAX_BYTES_ENV, BackupStore, max_download_bytes
from provisioner.errors import InputError, ProvisionError
from provisioner.postboot import steps
from provisioner.postboot.params import BACKUP, JobParams
from provisioner.postboot.queue import JobQueue, JobRecord, queue_for
from provisioner.postboot.schedule import schedule_postboot
from provisioner.postboot.ssh import DownloadTooLarge
from provisioner.postboot.worker import run_worker
from provisioner.spec.conf import read_conf
from provisioner.spec.load import load_domain

REPO = Path(__file__).resolve().parents[2]


def tar_gz(members: list[tarfile.TarInfo], contents: dict[str, bytes] | None = None) -> bytes:
    """A tar.gz of `members` (names, links and types taken as they are, hostile or not)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info in members:
            data = (contents or {}).get(info.name, b"")
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def file_member(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def site(env: Env, makefile: str, extra: dict[str, bytes] | None = None) -> Env:
    """Set the domain up with a site archive whose Makefile is `makefile` (plus `extra` files)."""
    files = {"Makefile": makefile.encode(), **(extra or {})}
    path = env.spec.input_dir / "data.tar.gz"
    path.write_bytes(tar_gz([file_member(name) for name in files], files))
    env = replace(env, spec=replace(env.spec, data_archive=path))
    assert setup(env).state == "done"
    return env


def setup(env: Env) -> JobRecord:
    return schedule_postboot(env.layout, env.spec, env.workspace, wait=True, progress=env.progress,
                             address=env.address, settings=env.settings)


def backup(env: Env, wait: bool = True) -> JobRecord:
    return schedule_backup(env.layout, env.domains, DOMAIN, wait=wait, progress=env.progress, settings=env.settings)


def store(env: Env) -> BackupStore:
    return BackupStore.of(env.layout, DOMAIN)


def give(env: Env, path: Path, text: str) -> None:
    """Write a file of the site's data on the guest, owned (with its new directories) by the guest user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    current = path
    while current != env.user.home:
        shutil.chown(current, env.user.name)
        current = current.parent


def stored_files(env: Env) -> list[str]:
    directory = store(env).directory
    return sorted(p.name for p in directory.iterdir() if p.name != ".lock") if directory.exists() else []


def site_data(env: Env) -> Path:
    return env.user.home / "www" / DOMAIN / "data"


def test_round_trip_restores_the_sites_data_with_example_test(env: Env) -> None:
    assert setup(env).state == "done"
    give(env, site_data(env) / "notes" / "first.txt", "kept across guests\n")
    job = backup(env)
    assert (job.kind, job.state, job.step, job.exit_code) == (BACKUP, "done", "store", 0)
    [version] = store(env).versions()
    archive = store(env).archive(version.name)
    assert version.name.endswith("-" + version.sha256[:12])
    assert version.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (version.size, version.exit_status, version.job_id) == (archive.stat().st_size, 0, job.id)
    assert version.log_path == job.log_path and "make backup wrote" in Path(job.log_path).read_text()
    assert json.loads(store(env).manifest(version.name).read_text())["sha256"] == version.sha256
    for path in (store(env).directory.parent, store(env).directory):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in (archive, store(env).manifest(version.name)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The guest's copy is removed once stored; its log stays.
    guest_dirs = sorted((env.user.home / ".provisioner" / "jobs").glob(f"{DOMAIN}-{job.token}"))
    assert [d.name for d in guest_dirs] == [f"{DOMAIN}-{job.token}"]
    assert not (guest_dirs[0] / "backup.tar.gz").exists() and (guest_dirs[0] / "make.log").exists()

    # Restore onto a "fresh guest": the site and its data are gone there, then provision sets it up again.
    original = (env.spec.input_dir / "data.tar.gz").read_bytes()
    done = restore(env.layout, env.domains, DOMAIN, "latest")
    assert (done.version, done.archive.read_bytes()) == (version, archive.read_bytes())
    assert done.moved_aside is not None and done.moved_aside.read_bytes() == original
    assert done.moved_aside.name.startswith("data.tar.gz.replaced-")
    shutil.rmtree(env.user.home / "www")
    env = replace(env, spec=load_domain(DOMAIN, env.domains, env.layout))
    assert setup(env).state == "done"
    assert (site_data(env) / "notes" / "first.txt").read_text() == "kept across guests\n"
    assert (env.user.home / "www" / DOMAIN / ".provisioned").read_text().startswith("example.test site installed")


def test_failing_backup_target_is_recorded_and_stores_nothing(env: Env) -> None:
    env = site(env, "all:\n\ttrue\nbackup:\n\techo backing up goes wrong\n\texit 3\n")
    with pytest.raises(BackupJobFailed, match=r"backup job 2 failed: make backup failed on the guest: exit status 2; "
                                              r"nothing stored .*; log: "):
        backup(env)
    job = queue_for(env.layout, env.settings).get(2)
    assert (job.kind, job.state, job.step, job.exit_code) == (BACKUP, "failed", "fetch", 2)
    log = Path(job.log_path).read_text()
    assert "backing up goes wrong" in log and "Error 3" in log
    assert stored_files(env) == []


def test_backup_target_that_writes_no_archive_fails(env: Env) -> None:
    env = site(env, "all:\n\ttrue\nbackup:\n\t@echo forgot to write it\n")
    with pytest.raises(BackupJobFailed, match=r"make backup wrote no archive at \$BACKUP_ARCHIVE: exit status 125"):
        backup(env)
    assert "wrote no regular file" in Path(queue_for(env.layout, env.settings).get(2).log_path).read_text()
    assert stored_files(env) == []


def test_site_directory_gone_on_the_guest_fails(env: Env) -> None:
    setup_job = setup(env)
    shutil.rmtree(env.user.home / ".provisioner" / "jobs" / f"{DOMAIN}-{setup_job.token}" / "site")
    with pytest.raises(BackupJobFailed, match=r"the site's directory is gone on the guest \(provision the domain "
                                              r"again\): exit status 125; nothing stored"):
        backup(env)
    assert queue_for(env.layout, env.settings).get(2).exit_code == 125
    assert stored_files(env) == []


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


HOSTILE_BACKUPS = {
    "dotdot": ([file_member("Makefile"), file_member("../escaped")], "member '../escaped' contains '..'"),
    "symlink-out": ([file_member("Makefile"), _symlink("data", "../../etc")],
                    "symlink 'data' -> '../../etc' points outside the archive"),
    "absolute": ([file_member("Makefile"), file_member("/etc/cron.d/x")], "member '/etc/cron.d/x' is an absolute path"),
    "no-makefile": ([file_member("index.html")], "no Makefile at the archive's root"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BACKUPS))
def test_hostile_archive_from_the_guest_is_refused_and_nothing_stored(env: Env, case: str) -> None:
    members, why = HOSTILE_BACKUPS[case]
    env = site(env, "all:\n\ttrue\nbackup:\n\tcp evil.tar.gz \"$$BACKUP_ARCHIVE\"\n",
               {"evil.tar.gz": tar_gz(members, {"Makefile": b"all:\n\ttrue\n"})})
    with pytest.raises(BackupJobFailed, match=re.escape(f"the backup from the guest is refused, nothing stored: {why}")):
        backup(env)
    assert queue_for(env.layout, env.settings).get(2).step == "download"
    assert stored_files(env) == []


def test_archive_over_the_cap_is_refused_before_download(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup(env).state == "done"
    monkeypatch.setenv(MAX_BYTES_ENV, "100")
    with pytest.raises(BackupJobFailed, match=r"the backup is [0-9]+ bytes, more than 100 \(PROVISION_BACKUP_MAX_BYTES\)"
                                              ": refused, nothing stored"):
        backup(env)
    assert stored_files(env) == []


def test_download_stops_at_its_cap(env: Env) -> None:
    assert setup(env).state == "done"
    params = queue_for(env.layout, env.settings).get(1).params
    guest = steps.connect(DOMAIN, params, env.settings, lambda _: None)
    received = bytearray()
    try:
        with pytest.raises(DownloadTooLarge, match="more than 1000 bytes came from"):
            guest.ssh.download("head -c 5000 /dev/zero", received.extend, 1000, 10)
        assert len(received) <= 1000
        received.clear()
        result = guest.ssh.download("head -c 1000 /dev/zero", received.extend, 1000, 10)
        assert (result.returncode, result.size, bytes(received)) == (0, 1000, bytes(1000))
    finally:
        guest.ssh.close()


def test_rotation_keeps_backup_keep_versions(env: Env) -> None:
    conf_set(env.domains / DOMAIN, backup_keep="2")
    assert setup(env).state == "done"
    jobs = []
    for turn in range(3):
        give(env, site_data(env) / "turn.txt", f"turn {turn}\n")
        jobs.append(backup(env).id)
    versions = store(env).versions()
    assert [v.job_id for v in versions] == jobs[1:]
    assert stored_files(env) == sorted(f"{v.name}{suffix}" for v in versions for suffix in (".json", ".tar.gz"))
    with tarfile.open(store(env).archive(versions[-1].name)) as tar:
        assert tar.extractfile("./data/turn.txt").read() == b"turn 2\n"  # type: ignore[union-attr]


def test_corrupt_version_is_refused_on_restore(env: Env) -> None:
    assert setup(env).state == "done"
    backup(env)
    [version] = store(env).versions()
    with open(store(env).archive(version.name), "ab") as stream:
        stream.write(b"\0")
    before = (env.domains / DOMAIN / "data.tar.gz").read_bytes()
    with pytest.raises(BackupCorrupt, match=f"backup {version.name} of {DOMAIN} is corrupt: .* refused"):
        restore(env.layout, env.domains, DOMAIN, version.name)
    assert (env.domains / DOMAIN / "data.tar.gz").read_bytes() == before
    assert sorted(p.name for p in (env.domains / DOMAIN).iterdir()) == sorted(p.name for p in EXAMPLE.iterdir())
    with pytest.raises(NoSuchVersion, match="no backup version '20000101T000000Z-000000000000'"):
        restore(env.layout, env.domains, DOMAIN, "20000101T000000Z-000000000000")


def test_no_wait_queues_and_the_worker_stores_it(env: Env) -> None:
    assert setup(env).state == "done"
    job = backup(env, wait=False)
    assert job.state == "queued" and stored_files(env) == []
    assert run_worker(env.layout, env.settings, env.progress, drain=True) == 1
    [version] = store(env).versions()
    assert version.job_id == job.id and queue_for(env.layout, env.settings).get(job.id).state == "done"


def test_a_resumed_job_does_not_store_twice(env: Env) -> None:
    assert setup(env).state == "done"
    job = backup(env)
    # As if the worker died after storing: the job runs again and finds its version.
    with sqlite3.connect(env.layout.state_db) as db:
        db.execute("UPDATE postboot_jobs SET state = 'queued' WHERE id = ?", (job.id,))
    assert run_worker(env.layout, env.settings, env.progress, drain=True) == 1
    record = queue_for(env.layout, env.settings).get(job.id)
    assert record.state == "done" and "already stored by this job" in (record.message or "")
    assert len(store(env).versions()) == 1


def test_a_failed_backup_does_not_make_provision_set_the_site_up_again(env: Env) -> None:
    env = site(env, "all:\n\ttrue\nbackup:\n\texit 1\n")
    ctx = pipeline.Context(env.layout, env.domains)
    assert not pipeline.postboot_pending(ctx, env.spec, env.workspace)
    with pytest.raises(BackupJobFailed):
        backup(env)
    assert not pipeline.postboot_pending(ctx, env.spec, env.workspace)


def test_a_queue_made_before_backups_takes_backup_jobs(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE postboot_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL UNIQUE,"
                   " domain TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('setup', 'layer')),"
                   " state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped',"
                   " 'cancelled')), step TEXT, attempts INTEGER NOT NULL DEFAULT 0, worker_pid INTEGER,"
                   " worker_start INTEGER, created REAL NOT NULL, started REAL, finished REAL, exit_code INTEGER,"
                   " message TEXT, log_path TEXT, params TEXT NOT NULL)")
        db.execute("INSERT INTO postboot_jobs (token, domain, kind, state, created, params) VALUES"
                   " ('t1', 'old.test', 'setup', 'done', 1.0, ?)", (json.dumps(JobParams("w", "u", "a", "i", "k").to_json()),))
    queue = JobQueue(path)
    job = queue.add("old.test", BACKUP, JobParams("w", "u", "a", "i", "k", site_job="old.test-t1"))
    assert (job.id, job.kind, job.params.site_job) == (2, BACKUP, "old.test-t1")
    assert [(j.id, j.kind, j.token) for j in queue.list()] == [(1, "setup", "t1"), (2, BACKUP, job.token)]


def test_cli_commands_and_exit_codes(env: Env) -> None:
    variables = {f"PROVISION_POSTBOOT_{f.name.upper()}": str(getattr(env.settings, f.name))
                 for f in fields(env.settings)}

    def provision(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(REPO / "bin" / "provision"), "--root", str(env.layout.root), "--domains",
                               str(env.domains), *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **variables})

    nothing = provision("backup", DOMAIN)
    assert nothing.returncode == 1 and "no site was set up on its guest yet" in nothing.stderr
    assert setup(env).state == "done"
    taken = provision("-q", "backup", DOMAIN)
    assert taken.returncode == 0, taken.stderr
    [version] = store(env).versions()
    assert taken.stdout == f"{DOMAIN}: backup {version.name} stored ({version.size} bytes, sha256 {version.sha256})\n"
    listed = provision("backups", DOMAIN)
    assert listed.returncode == 0 and version.name in listed.stdout and version.sha256 in listed.stdout
    assert json.loads(provision("backups", DOMAIN, "--json").stdout)[0]["sha256"] == version.sha256
    unknown = provision("backup", DOMAIN, "--restore", "nope")
    assert unknown.returncode == 2 and "no backup version 'nope'" in unknown.stderr
    alone = provision("backup", DOMAIN, "--into", "other.test")
    assert alone.returncode == 2 and "--into: only goes with --restore" in alone.stderr
    other = env.domains / "other.test"
    other.mkdir()
    restored = provision("backup", DOMAIN, "--restore", version.name, "--into", "other.test")
    assert restored.returncode == 0, restored.stderr
    assert "`provision other.test` sets it up" in restored.stdout
    assert (other / "data.tar.gz").read_bytes() == store(env).archive(version.name).read_bytes()
    with open(store(env).archive(version.name), "ab") as stream:
        stream.write(b"\0")
    corrupt = provision("backup", DOMAIN, "--restore", "latest")
    assert corrupt.returncode == 1 and f"backup {version.name} of {DOMAIN} is corrupt" in corrupt.stderr
    env = site(env, "all:\n\ttrue\nbackup:\n\texit 4\n")
    failed = provision("backup", DOMAIN)
    assert failed.returncode == 1 and "make backup failed on the guest: exit status 2" in failed.stderr


@pytest.mark.parametrize("raw", ["0", "-1", "12x", "1e9"])
def test_bad_download_cap_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ProvisionError, match="^PROVISION_BACKUP_MAX_BYTES: must be a positive integer"):
        max_download_bytes({MAX_BYTES_ENV: raw})
    assert max_download_bytes({}) == 2 * 1024**3 and max_download_bytes({MAX_BYTES_ENV: "5"}) == 5


@pytest.mark.parametrize("raw", ["0", "two", "1, 2"])
def test_bad_backup_keep_is_an_error_naming_the_key(tmp_path: Path, raw: str) -> None:
    (tmp_path / "provision.conf").write_text(f"image = x.qcow2\nbackup_keep = {raw}\n")
    with pytest.raises(InputError, match="provision.conf: key 'backup_keep': "):
        read_conf(tmp_path / "provision.conf")
    (tmp_path / "provision.conf").write_text("image = x.qcow2\n")
    assert read_conf(tmp_path / "provision.conf")["backup_keep"] == 7
