"""Running queued jobs: one now (for `provision DOMAIN`), or all of them (`provision worker`, the API server)."""

from __future__ import annotations

import threading

from provisioner.layout import Layout
from provisioner.postboot.job import run_job
from provisioner.postboot.queue import FINISHED, JobQueue, JobRecord, Worker, queue_for
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.steps import Backoff
from provisioner.progress import Progress


def run_now(queue: JobQueue, job_id: int, settings: PostbootSettings, progress: Progress) -> JobRecord:
    """Run job `job_id` in this process and return its final record.

    If another worker already runs it, or runs an earlier job of the same
    domain, follow that until this job has finished instead.
    """
    worker = Worker.current()
    backoff = Backoff(settings)
    seen: tuple[str, str | None] | None = None
    while True:
        job = queue.claim(worker, job_id)
        if job is not None:
            return run_job(queue, job, worker, settings, progress)
        current = queue.get(job_id)
        if current.state in FINISHED:
            return current
        if (current.state, current.step) != seen:
            seen = (current.state, current.step)
            if current.state == "queued":
                progress.say(f"{current.domain}: job {job_id} waits for another job of this domain to finish")
            else:
                progress.say(f"{current.domain}: job {job_id} is run by worker pid {current.worker_pid} "
                             f"(step {current.step or 'start'})")
        backoff.pause()


def run_worker(layout: Layout, settings: PostbootSettings, progress: Progress, drain: bool = False,
               stop: threading.Event | None = None) -> int:
    """Run queued jobs one after another until `stop` is set (or, with `drain`, the queue is empty).

    Returns how many jobs this worker ran.
    """
    queue = queue_for(layout, settings)
    worker = Worker.current()
    stop = stop or threading.Event()
    ran = 0
    while not stop.is_set():
        job = queue.claim(worker)
        if job is None:
            if drain:
                break
            stop.wait(settings.worker_idle)
            continue
        record = run_job(queue, job, worker, settings, progress)
        progress.say(f"job {record.id} ({record.domain}): {record.state}: {record.message}")
        ran += 1
    return ran


class BackgroundWorker:
    """A worker thread for a long-running process (the API server): start() once, stop() on shutdown."""

    def __init__(self, layout: Layout, settings: PostbootSettings | None = None, progress: Progress | None = None):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_worker, name="postboot-worker", daemon=True,
            args=(layout, settings or PostbootSettings.from_env(), progress or Progress(quiet=True)),
            kwargs={"stop": self._stop})

    def start(self) -> None:
        """Start running queued jobs in the background."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the worker to stop after its current job, and wait up to `timeout` seconds."""
        self._stop.set()
        self._thread.join(timeout)
