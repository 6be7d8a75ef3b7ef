"""Runs queued jobs on a few threads of every API process, each with the handler registered for its record type.

A handler is three functions of one record type: `run` does the work;
`failed` records on the subject a failure of that work (a ProvisionError
from `run`); `dropped` records that the job's outcome is unknown: its
claimer died `max_attempts` times, or `run` raised anything else (a bug).
Either way the job leaves the queue; nothing is left busy without a job.
A job whose run fails once the server is stopping (a ProvisionError: Ctrl-C
reaches Terraform too) is queued again, as if never tried.

While a process runs jobs, a thread of it renews their leases every third
of the lease (PROVISION_JOB_LEASE seconds, default 30): when the process or
its host dies, the leases run out and another node's threads take the jobs
(api/jobs/queue.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from api.db import Database
from api.jobs.queue import LEASE, Claimer, JobQueue, QueuedJob
from api.jobs.records import Job
from provisioner.errors import ProvisionError

log = logging.getLogger("api.jobs")

J = TypeVar("J", bound=Job)

# Seconds between looks at the queue when nothing in this process says there is work:
# other processes' jobs that become runnable, and dead processes' jobs to resume.
POLL = 1.0
INTERNAL_ERROR = "internal error: see the API server's log"
LEASE_VARIABLE = "PROVISION_JOB_LEASE"
MIN_LEASE = 3  # renewed every third of it: at least once a second


def job_lease(environ: dict[str, str] | None = None) -> float:
    """The seconds a job's claim lasts without renewal: PROVISION_JOB_LEASE (whole seconds), else LEASE."""
    raw = (os.environ if environ is None else environ).get(LEASE_VARIABLE, "").strip()
    if not raw:
        return LEASE
    if not raw.isdigit() or not MIN_LEASE <= int(raw) <= 86400:
        raise ProvisionError(f"{LEASE_VARIABLE}: use a whole number of seconds from {MIN_LEASE} to 86400")
    return float(raw)


@dataclass(frozen=True)
class Handler(Generic[J]):
    """What runs one record type, and what its subject becomes when the run fails or the job is dropped."""

    run: Callable[[J], None]
    failed: Callable[[J, str], None]
    dropped: Callable[[J, str], None]


class JobRunner:
    """Runs queued jobs on `workers` threads of this process, several subjects at once.

    At most `workers` jobs run at once on the host, across all processes
    (builds are CPU-heavy: more API processes must not mean more of them).
    Threads start with `start()` (or the first submit), after any fork.
    """

    def __init__(self, db: Database, workers: int, node: str, max_attempts: int = 3, lease: float | None = None):
        self.queue = JobQueue(db, max_running=workers, max_attempts=max_attempts,
                              lease=job_lease() if lease is None else lease)
        self.workers = workers
        self.node = node  # this API root's id: whose claims this process's pids are (api/jobs/queue.py)
        self._handlers: dict[type[Job], Handler[Any]] = {}
        # Run by recover() after dead processes' jobs are requeued: each marks its subjects left busy without a job.
        self.on_recover: list[Callable[[JobQueue], None]] = []
        self._threads: list[threading.Thread] = []
        self._wake = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._me: Claimer | None = None
        self._running = 0  # jobs this process runs now: their leases need renewing

    def register(self, record: type[J], run: Callable[[J], None], failed: Callable[[J, str], None],
                 dropped: Callable[[J, str], None] | None = None) -> None:
        """Handle jobs of type `record` (one handler per type); `dropped` defaults to `failed`."""
        if record in self._handlers:
            raise ValueError(f"{record.__name__} jobs already have a handler")
        self._handlers[record] = Handler(run, failed, dropped or failed)

    def submit(self, job: Job) -> QueuedJob:
        """Queue a job after the ones already queued for its subject, and wake a thread to run it."""
        if type(job) not in self._handlers:
            raise ValueError(f"no handler registered for {type(job).__name__} jobs")
        queued = self.queue.add(job)
        self.start()
        self._notify()
        return queued

    def start(self) -> None:
        """Start this process's job threads (once; call it after forking)."""
        with self._wake:
            if self._threads or self._stopping:
                return
            self._me = Claimer.current(self.node)
            self._threads = [threading.Thread(target=self._loop, name=f"job-{i}", daemon=True)
                             for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        # Not one of _threads: shutdown() waits for the jobs, not for this thread's sleep.
        threading.Thread(target=self._renew_leases, name="job-leases", daemon=True).start()

    def _notify(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _loop(self) -> None:
        assert self._me is not None
        while True:
            with self._wake:
                if self._stopping:
                    return
                seen = self._generation
            try:
                queued = self.queue.claim(self._me) if self.queue.pending() else None
                if queued is not None and self._stopping:
                    self.queue.release(queued)  # claimed as the server began to stop: leave it for the next start
                elif queued is not None:
                    self._run(queued)
                elif self._idle(seen):
                    self._drop(self.queue.reap(self.node))
            except self.queue.db.errors:
                # The database was locked too long or failed: this thread must outlive it, so retry later.
                log.exception("job queue unavailable; retrying in %s s", POLL)
                self._idle(seen)

    def _renew_leases(self) -> None:
        """Renew this process's claims every third of the lease while it runs jobs (through shutdown's wait)."""
        assert self._me is not None
        while not self._stopping or any(thread.is_alive() for thread in self._threads):
            time.sleep(self.queue.lease / 3)  # not on _wake: its every notify would renew again
            with self._wake:
                running = self._running
            if not running:
                continue
            try:
                held = self.queue.renew(self._me)
            except self.queue.db.errors:
                log.exception("job leases not renewed; retrying in %s s", self.queue.lease / 3)
                continue
            if held < running:
                # Reaped after its lease ran out (this process stalled or lost the database): another node may
                # run it too; the handlers are idempotent and Terraform's state lock keeps two applies apart.
                log.warning("%d of this process's %d running jobs lost their lease", running - held, running)

    def _idle(self, seen: int) -> bool:
        """Wait for news or POLL seconds; True if none came (time to look for dead processes' jobs)."""
        with self._wake:
            self._wake.wait_for(lambda: self._stopping or self._generation != seen, POLL)
            return not self._stopping and self._generation == seen

    def _run(self, queued: QueuedJob) -> None:
        job = queued.job
        handler = self._handlers.get(type(job))
        interrupted = False
        with self._wake:
            self._running += 1
        try:
            if handler is None:
                # Every app registers every record type: this is a bug, and the job could never run here.
                log.error("%s job on %s %s deleted: no handler", job.kind, job.subject.kind, job.subject.id)
            else:
                handler.run(job)
        except ProvisionError as exc:
            interrupted = self._stopping
            if handler is not None and not interrupted:
                handler.failed(job, str(exc))
        except Exception:
            # A bug, not a provisioning failure: keep the thread alive, and leave the subject settled.
            log.exception("%s job on %s %s failed", job.kind, job.subject.kind, job.subject.id)
            if handler is not None:
                handler.dropped(job, INTERNAL_ERROR)
        finally:
            with self._wake:
                self._running -= 1
            if interrupted:
                log.info("%s job on %s %s interrupted by the server stopping: resumed at the next start",
                         job.kind, job.subject.kind, job.subject.id)
                self.queue.release(queued)
            else:
                self.queue.done(queued)
                # The subject's next job (queued here or by another process) is runnable now.
                self._notify()

    def _drop(self, dropped: list[QueuedJob]) -> None:
        for queued in dropped:
            job = queued.job
            log.error("%s job on %s %s dropped: its process died %d times", job.kind, job.subject.kind,
                      job.subject.id, queued.attempts)
            handler = self._handlers.get(type(job))
            if handler is not None:
                handler.dropped(job, f"{job.kind} interrupted: the API server process running it died "
                                     f"{queued.attempts} times")

    def recover(self) -> None:
        """At start, before any job runs: requeue the jobs of dead processes (or drop them), then let each
        subject kind mark what was left busy without a job."""
        self._drop(self.queue.reap(self.node))
        for check in self.on_recover:
            check(self.queue)

    def stop(self) -> None:
        """Claim no more jobs (call it as soon as the server is told to stop)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop claiming jobs; wait up to `timeout` s for running ones (any left are resumed at the next start)."""
        self.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
