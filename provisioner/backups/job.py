"""The steps of a backup job, after `ssh` (provisioner/postboot/job.py dispatches here).

push, submit, run and fetch are the setup job's (same guest job directory,
same resume rules); then `download` brings the archive back under a size cap
and checks it like a domain's data.tar.gz, and `store` files it as a version
and keeps the newest `backup_keep`. Nothing is stored unless every check passed.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable

from provisioner.backups import guest as backup_guest
from provisioner.backups.errors import BackupFailed, BackupRefused
from provisioner.backups.store import MAX_BYTES_ENV, BackupStore, HashingWriter, max_download_bytes
from provisioner.errors import InputError
from provisioner.postboot import steps
from provisioner.postboot.errors import PostbootError
from provisioner.postboot.guest_script import job_dir
from provisioner.postboot.queue import JobRecord
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.ssh import DownloadTooLarge
from provisioner.spec.archive import check_archive

if TYPE_CHECKING:
    from provisioner.postboot.job import JobLog

Step = Callable[[str, str], AbstractContextManager[None]]


def run_backup_steps(job: JobRecord, guest: steps.Guest, settings: PostbootSettings, step: Step,
                     log: JobLog) -> str:
    """Run a backup job on a connected guest; the message of its success."""
    params = job.params
    if params.site_job is None or params.backup_dir is None or params.backup_keep is None or params.script is None:
        raise PostbootError(f"backup job {job.id} lacks its parameters (queued by another version?): "
                            "queue it again with `provision backup`")
    store = BackupStore(Path(params.backup_dir), job.domain)
    done = store.by_job(job.token)
    if done is not None:
        return f"backup {done.name} was already stored by this job"
    directory = job_dir(guest.home, job.guest_dir_name)
    state = steps.guest_state(guest, directory, settings)
    if state in ("absent", "new"):
        with step("push", f"copying {backup_guest.SCRIPT_NAME} to {directory}"):
            steps.push(guest, directory, {backup_guest.SCRIPT_NAME: Path(params.script)}, settings)
        with step("submit", "submitting the backup script to the guest's atd"):
            steps.submit(guest, directory, settings, script=backup_guest.SCRIPT_NAME)
    else:
        log(f"the guest already has this job ({state}): not copying or submitting it again")
    with step("run", "make backup on the guest (run by atd)"):
        outcome = steps.wait_for_setup(guest, directory, settings, log)
    with step("fetch", f"fetching the guest's log into {log.path.parent}"):
        log.guest_output(f"{directory}/make.log", steps.fetch_log(guest, directory, settings))
    check_backup_outcome(outcome, str(directory))
    limit = max_download_bytes()
    with store.staging() as (staged, sink):
        with step("download", f"bringing {backup_guest.ARCHIVE_NAME} back (at most {limit} bytes) and checking it"):
            download(guest, directory, sink, limit, settings)
            try:
                check_archive(staged, store.directory)
            except InputError as exc:
                raise BackupRefused(f"the backup from the guest is refused, nothing stored: {exc.message}") from None
        with step("store", f"storing it in {store.directory}"):
            version, removed = store.store(staged, sink.digest.hexdigest(), sink.size, outcome.status,
                                           str(log.path), job.id, job.token, params.backup_keep)
    log(f"stored {store.archive(version.name)} ({version.size} bytes, sha256 {version.sha256})"
        + (f"; removed the older {', '.join(removed)} (backup_keep = {params.backup_keep})" if removed else ""))
    # The guest's copy is not needed any more (make.log stays there); the version is stored whatever happens here.
    try:
        steps.remote(guest, backup_guest.remove_command(directory), time.monotonic() + settings.command_timeout,
                     settings)
    except PostbootError as exc:
        log(f"could not remove the guest's {directory}/{backup_guest.ARCHIVE_NAME} (remove it by hand): {exc}")
    kept = len(store.versions())
    return f"backup {version.name} stored ({version.size} bytes); {kept} version(s) kept"


def check_backup_outcome(outcome: steps.Outcome, directory: str) -> None:
    """Raise BackupFailed for a non-zero status, naming the phase."""
    if outcome.status == 0:
        return
    if outcome.phase == "site":
        what = "the site's directory is gone on the guest (provision the domain again)"
    elif outcome.phase == "archive":
        what = f"make backup wrote no archive at ${backup_guest.ARCHIVE_VARIABLE}"
    else:
        what = "make backup failed on the guest"
    raise BackupFailed(f"{what}: exit status {outcome.status}; nothing stored (the guest's log: "
                       f"{directory}/make.log)", outcome.status)


def download(guest: steps.Guest, directory: PurePosixPath, sink: HashingWriter, limit: int,
             settings: PostbootSettings) -> None:
    """Stream the guest's archive into `sink`, refusing it before and while reading past `limit` bytes."""
    deadline = time.monotonic() + settings.command_timeout
    probe = steps.remote(guest, backup_guest.size_command(directory), deadline, settings)
    announced = probe.text.strip()
    if probe.returncode != 0 or not announced.isdigit():
        raise PostbootError(f"the guest's {directory}/{backup_guest.ARCHIVE_NAME} cannot be read: "
                            f"{probe.stderr or f'exit status {probe.returncode}'}")
    if int(announced) > limit:
        raise BackupRefused(f"the backup is {announced} bytes, more than {limit} ({MAX_BYTES_ENV}): refused, "
                            "nothing stored")
    try:
        result = guest.ssh.download(backup_guest.download_command(directory), sink.write, limit,
                                    settings.push_timeout)
    except DownloadTooLarge:
        raise BackupRefused(f"the backup grew past {limit} bytes ({MAX_BYTES_ENV}) while it was read: "
                            "refused, nothing stored") from None
    sink.flush()
    if result.returncode != 0:
        raise PostbootError(f"could not read the guest's {directory}/{backup_guest.ARCHIVE_NAME}: "
                            f"{result.stderr or f'exit status {result.returncode}'}")
