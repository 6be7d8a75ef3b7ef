"""Queueing a backup job (and running it now, by default), and restoring a version as data.tar.gz."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from provisioner.backups.guest import render_backup_script
from provisioner.backups.store import BackupStore, Version
from provisioner.errors import InputError, ProvisionError
from provisioner.layout import Layout
from provisioner.postboot.errors import PostbootFailed
from provisioner.postboot.params import BACKUP, LAYER, SETUP
from provisioner.postboot.queue import DONE, FAILED, JobQueue, JobRecord, queue_for
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.worker import run_now
from provisioner.progress import Progress
from provisioner.spec.conf import read_conf
from provisioner.spec.names import validate_domain_name
from provisioner.workspace import write_atomic

ARCHIVE_NAME = "data.tar.gz"


class BackupJobFailed(PostbootFailed):
    """`provision backup DOMAIN` ran the backup job and it failed."""


def site_job(queue: JobQueue, domain: str) -> JobRecord:
    """The domain's last successful job that set a site up (its guest directory holds `site/`)."""
    done = [job for job in queue.list(states=(DONE,), domain=domain)
            if job.kind in (SETUP, LAYER) and job.params.archive is not None]
    if not done:
        raise ProvisionError(f"{domain}: no site was set up on its guest yet (no finished post-boot job with a "
                             f"data.tar.gz): `provision {domain}` first, then back it up")
    return done[-1]


def schedule_backup(layout: Layout, domains_dir: Path, domain: str, wait: bool, progress: Progress,
                    settings: PostbootSettings | None = None) -> JobRecord:
    """Queue `domain`'s backup job; with `wait`, run it now and raise BackupJobFailed if it fails.

    The job reaches the guest exactly as the domain's last successful setup
    (or layer) job did, and runs `make backup` in that job's site directory.
    `backup_keep` comes from the domain directory's provision.conf.
    """
    validate_domain_name(domain)
    keep = read_conf(domains_dir / domain / "provision.conf")["backup_keep"]
    settings = settings or PostbootSettings.from_env()
    queue = queue_for(layout, settings)
    site = site_job(queue, domain)
    workspace = Path(site.params.workspace)
    script = workspace / "postboot" / f"backup-{site.guest_dir_name}.sh"
    write_atomic(script, render_backup_script(domain, site.guest_dir_name).encode())
    store = BackupStore.of(layout, domain)
    params = replace(site.params, archive=None, script=str(script), layer_config=None, layer_packages=False,
                     layer_ips=(), site_job=site.guest_dir_name, backup_dir=str(store.directory), backup_keep=keep)
    job = queue.add(domain, BACKUP, params)
    if not wait:
        return job
    job = run_now(queue, job.id, settings, progress)
    if job.state == FAILED:
        raise BackupJobFailed(f"{domain}: backup job {job.id} failed: {job.message}"
                              f"{f'; log: {job.log_path}' if job.log_path else ''}")
    return job


@dataclass(frozen=True)
class Restored:
    """What `restore` did: the version, the domain directory's archive, and where the old one went."""

    version: Version
    archive: Path
    moved_aside: Path | None


def restore(layout: Layout, domains_dir: Path, domain: str, name: str, into: str | None = None) -> Restored:
    """Make version `name` (or `latest`) of `domain`'s backups the data.tar.gz of domain directory `into`.

    The copy's size and sha256 are checked against the manifest before
    anything in the domain directory changes; a previous data.tar.gz is
    renamed `data.tar.gz.replaced-<UTC time>` first. `into` defaults to `domain`.
    """
    validate_domain_name(domain)
    target_name = into or domain
    validate_domain_name(target_name)
    directory = domains_dir / target_name
    if not directory.is_dir():
        raise InputError(str(directory), "domain directory not found (use --domains DIR or PROVISION_DOMAINS)")
    store = BackupStore.of(layout, domain)
    if not store.directory.is_dir():
        raise InputError(str(store.directory), f"no backups of {domain} yet (`provision backup {domain}` makes one)")
    archive = directory / ARCHIVE_NAME
    staged = directory / f".{ARCHIVE_NAME}.restore-{secrets.token_hex(6)}"
    with store.locked():
        version = store.find(name)
        store.copy_verified(version, staged)
    try:
        os.chmod(staged, 0o600)
        aside = None
        if archive.exists() or archive.is_symlink():
            aside = _free_name(directory, f"{ARCHIVE_NAME}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            os.rename(archive, aside)
        os.replace(staged, archive)
    finally:
        staged.unlink(missing_ok=True)
    return Restored(version, archive, aside)


def _free_name(directory: Path, name: str) -> Path:
    """`directory/name`, or with a `-N` suffix when that exists already (two restores in one second)."""
    for count in range(100):
        path = directory / (name if count == 0 else f"{name}-{count}")
        if not (path.exists() or path.is_symlink()):
            return path
    raise ProvisionError(f"{directory}: too many {name}* files: remove old ones")

