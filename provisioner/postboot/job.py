"""Running one claimed job: its steps in order, each recorded in the queue and the job's log."""

from __future__ import annotations

import time
import traceback
from contextlib import AbstractContextManager
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.postboot import layer_steps, steps
from provisioner.postboot.errors import SetupFailed
from provisioner.postboot.guest_script import ARCHIVE_NAME, SCRIPT_NAME, job_dir
from provisioner.postboot.layer_commands import CONFIG_NAME
from provisioner.postboot.params import BACKUP, LAYER
from provisioner.postboot.queue import DONE, FAILED, JobQueue, JobRecord, Worker
from provisioner.postboot.settings import PostbootSettings
from provisioner.progress import Progress


def log_path(job: JobRecord) -> Path:
    """The job's log on the host: host-side events, then the guest's make output."""
    return Path(job.params.workspace) / "logs" / f"postboot-{job.id}.log"


class JobLog:
    """Appends timestamped lines to the job's log file (kept across resumed attempts)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a", encoding="utf-8") as stream:
            for line in message.splitlines() or [""]:
                stream.write(f"{stamp} provisioner: {line}\n")

    def guest_output(self, where: str, text: str) -> None:
        """Append the guest's log verbatim."""
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(f"----- guest log ({where}) -----\n{text}")
            if text and not text.endswith("\n"):
                stream.write("\n")
            stream.write("----- end of guest log -----\n")


def run_job(queue: JobQueue, job: JobRecord, worker: Worker, settings: PostbootSettings,
            progress: Progress) -> JobRecord:
    """Run a job this worker has claimed, to done or failed; return its final record.

    On Ctrl-C the job goes back to the queue (a worker resumes it) and
    KeyboardInterrupt propagates.
    """
    path = log_path(job)
    log = JobLog(path)
    log(f"job {job.id} ({job.kind}) for {job.domain}: attempt {job.attempts}, worker pid {worker.pid}")
    try:
        message = _run_steps(queue, job, worker, settings, progress, log)
    except KeyboardInterrupt:
        log("interrupted: the job is back in the queue")
        queue.release(job.id, worker, "interrupted; `provision worker` resumes it")
        raise
    except ProvisionError as exc:
        log(f"FAILED: {exc}")
        status = exc.status if isinstance(exc, SetupFailed) else None
        return queue.finish(job.id, worker, FAILED, str(exc), exit_code=status, log_path=str(path))
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the job "running" under a live worker
        log("internal error:\n" + traceback.format_exc())
        return queue.finish(job.id, worker, FAILED, f"internal error: {type(exc).__name__}: {exc}",
                            log_path=str(path))
    log(f"DONE: {message}")
    ran_make = job.params.archive is not None or job.kind == BACKUP
    return queue.finish(job.id, worker, DONE, message, exit_code=0 if ran_make else None, log_path=str(path))


def _run_steps(queue: JobQueue, job: JobRecord, worker: Worker, settings: PostbootSettings,
               progress: Progress, log: JobLog) -> str:
    params = job.params

    def step(name: str, title: str) -> AbstractContextManager[None]:
        queue.set_step(job.id, worker, name)
        log(f"step {name}: {title}")
        return progress.step(f"{job.domain}: {title}")

    where = params.address or (params.static_ips[0] if params.static_ips else "the address libvirt reports")
    with step("ssh", f"waiting for SSH as {params.user} at {where}"):
        guest = steps.connect(job.domain, params, settings, log)
    try:
        if job.kind == BACKUP:
            # Imported here: provisioner.backups builds on this package.
            from provisioner.backups.job import run_backup_steps
            return run_backup_steps(job, guest, settings, step, log)
        with step("cloud-init", "waiting for cloud-init to finish"):
            steps.wait_for_cloud_init(guest, settings, log)
        directory = job_dir(guest.home, job.guest_dir_name)
        done = "cloud-init finished"
        if job.kind == LAYER and params.layer_config is not None:
            applied = f"users{', packages' if params.layer_packages else ''}"
            with step("users", f"applying {CONFIG_NAME} ({applied}) with cloud-init's modules"):
                layer_steps.apply_cloud_config(guest, directory, Path(params.layer_config), params.layer_packages,
                                               settings, log)
            if params.layer_ips:
                with step("network", f"adding {', '.join(params.layer_ips)} to the machine"):
                    layer_steps.add_addresses(guest, job.domain, params.layer_ips, settings, log)
            done = f"layered ({applied}{', addresses' if params.layer_ips else ''})"
        if params.archive is None or params.script is None:
            return f"{done}; no data.tar.gz, so nothing else to set up"
        state = steps.guest_state(guest, directory, settings)
        if state in ("absent", "new"):
            with step("push", f"copying {ARCHIVE_NAME} and {SCRIPT_NAME} to {directory}"):
                steps.push(guest, directory, {ARCHIVE_NAME: Path(params.archive), SCRIPT_NAME: Path(params.script)},
                           settings)
            with step("submit", "submitting the setup script to the guest's atd"):
                steps.submit(guest, directory, settings)
        else:
            log(f"the guest already has this job ({state}): not copying or submitting it again")
        with step("run", "make on the guest (run by atd)"):
            outcome = steps.wait_for_setup(guest, directory, settings, log)
        with step("fetch", f"fetching the guest's log into {log.path.parent}"):
            log.guest_output(f"{directory}/make.log", steps.fetch_log(guest, directory, settings))
        steps.check_outcome(outcome)
        return "make succeeded"
    finally:
        guest.ssh.close()
