"""Server work that outlasts a request: build, delete, power actions, as persistent tasks of a named kind.

A task (api.compute.task_queue) is a server id, a kind and JSON-able
arguments, kept in `<root>/state.db` until it has run; `ServerTasks` runs it
with the method registered for its kind. Every API process runs a few task
threads that claim from the shared queue, so a request served by any process
may queue work that another runs. One server's tasks run in order (a delete
sent during the build waits for it, then destroys what it made); a task whose
process died is run again on the next start, so an interrupted build resumes
(re-converging a spec is idempotent).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from api.compute.models import ACTIVE, BUILD, DELETING, ERROR, ComputeStore, Server
from api.compute.power import power
from api.compute.task_queue import Task, TaskQueue
from api.engine import Engine
from api.errors import ApiError
from provisioner.claimer import Worker
from provisioner.errors import ProvisionError
from provisioner.spec.codec import spec_from_json
from provisioner.spec.model import DomainSpec

log = logging.getLogger("api.compute")


class Interrupted(Exception):
    """Raised by a handler whose work failed because the server is stopping: the task is queued again."""


# Seconds between looks at the queue when nothing in this process says there is work:
# other processes' tasks that become runnable, and dead processes' tasks to resume.
POLL = 1.0


class ServerTasks:
    """Runs queued server tasks on `workers` threads of this process, several servers at once.

    At most `workers` tasks run at once on the host, across all processes
    (builds are CPU-heavy: more API processes must not mean more of them).

    A kind is handled by one method taking the task; add a kind by adding
    its method to `self.handlers` (and to `on_destroyed` what must follow a
    server's deletion). Threads start with `start()` (or the first
    submit), after any fork.
    """

    def __init__(self, store: ComputeStore, engine: Engine, workers: int, stop_timeout: float):
        self.store = store
        self.engine = engine
        self.stop_timeout = stop_timeout
        self.queue = TaskQueue(store.servers.db, max_running=workers)
        self.handlers: dict[str, Callable[[Task], None]] = {
            "build": self.run_build, "delete": self.run_delete, "power": self.run_power}
        # Called with a server's id once its domain is destroyed, before its record goes (volumes detach).
        self.on_destroyed: list[Callable[[str], None]] = []
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._wake = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._me: Worker | None = None

    def start(self) -> None:
        """Start this process's task threads (once; call it after forking)."""
        with self._wake:
            if self._threads or self._stopping:
                return
            self._me = Worker.current()
            self._threads = [threading.Thread(target=self._loop, name=f"server-task-{i}", daemon=True)
                             for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

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
                task = self.queue.claim(self._me) if self.queue.pending() else None
                if task is not None and self._stopping:
                    self.queue.release(task)  # claimed as the server began to stop: leave it for the next start
                elif task is not None:
                    self._run(task)
                elif self._idle(seen):
                    self._fail(self.queue.reap())
            except sqlite3.Error:
                # The database was locked too long or failed: this thread must outlive it, so retry later.
                log.exception("server task queue unavailable; retrying in %s s", POLL)
                self._idle(seen)

    def _idle(self, seen: int) -> bool:
        """Wait for news or POLL seconds; True if none came (time to look for dead processes' tasks)."""
        with self._wake:
            self._wake.wait_for(lambda: self._stopping or self._generation != seen, POLL)
            return not self._stopping and self._generation == seen

    def submit(self, server_id: str, kind: str, args: dict[str, Any]) -> Task:
        """Queue a task of `kind` (a key of `handlers`) on the server, after the ones already queued for it."""
        if kind not in self.handlers:
            raise ValueError(f"unknown server task kind {kind!r}")
        task = self.queue.add(server_id, kind, args)
        self.start()
        self._notify()
        return task

    @property
    def stopping(self) -> bool:
        """True once the server is stopping (Ctrl-C also interrupts Terraform): a handler whose engine call
        failed then raises Interrupted instead of recording the failure."""
        return self._stopping

    def _run(self, task: Task) -> None:
        interrupted = False
        try:
            self.handlers[task.kind](task)
        except Interrupted:
            log.info("%s task on %s interrupted by the server stopping: resumed at the next start",
                     task.kind, task.server_id)
            interrupted = True
        except Exception:
            # A bug, not a provisioning failure: keep the worker alive, mark the server.
            log.exception("%s task on server %s failed", task.kind, task.server_id)
            self.store.change(task.server_id, status=ERROR, task_state=None,
                              fault="internal error: see the API server's log")
        finally:
            if interrupted:
                self.queue.release(task)
            else:
                self.queue.done(task)
                # The server's next task (queued here or by another process) is runnable now.
                self._notify()

    def _fail(self, dropped: list[Task]) -> None:
        for task in dropped:
            log.error("%s task on server %s dropped: its process died %d times", task.kind, task.server_id,
                      task.attempts)
            self.store.change(task.server_id, status=ERROR, task_state=None,
                              fault=f"{task.kind} interrupted: the API server process running it died "
                                    f"{task.attempts} times; delete and recreate the server")

    def build(self, server: Server, spec: DomainSpec) -> Task:
        """Provision the server's domain: BUILD, then ACTIVE or ERROR with the fault."""
        return self.submit(server.id, "build", {"spec": spec.to_json()})

    def delete(self, server: Server) -> Task:
        """Destroy the server's domain, then forget the server (or ERROR with the fault)."""
        return self.submit(server.id, "delete", {"domain": server.domain})

    def act(self, server: Server, uri: str, action: str) -> Task:
        """A power action; a failure leaves the status and records the fault."""
        return self.submit(server.id, "power", {"uri": uri, "domain": server.domain, "action": action})

    def run_build(self, task: Task) -> None:
        """The `build` kind: args {spec: DomainSpec.to_json()}; re-running it re-converges the same spec."""
        try:
            self.engine.provision(spec_from_json(task.args["spec"]))
        except ProvisionError as exc:
            if self.stopping:
                raise Interrupted from exc
            self._finish(task.server_id, status=ERROR, fault=str(exc))
            return
        self._finish(task.server_id, status=ACTIVE, fault=None)

    def run_delete(self, task: Task) -> None:
        """The `delete` kind: args {domain}; destroys the domain, then the server record."""
        try:
            self.engine.destroy(task.args["domain"])
        except ProvisionError as exc:
            if self.stopping:
                raise Interrupted from exc
            self.store.change(task.server_id, status=ERROR, task_state=None, fault=f"delete failed: {exc}")
            return
        for hook in self.on_destroyed:
            hook(task.server_id)
        self.store.servers.delete(task.server_id)

    def run_power(self, task: Task) -> None:
        """The `power` kind: args {uri, domain, action} (stop, start, reboot, hard-reboot, pause, unpause)."""
        try:
            status = power(task.args["uri"], task.args["domain"], task.args["action"], self.stop_timeout)
        except ApiError as exc:
            self._finish(task.server_id, fault=exc.message)
            return
        self._finish(task.server_id, status=status, fault=None)

    def _finish(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)

    def recover(self) -> None:
        """At start, before any task runs: requeue the tasks of dead processes; a server left busy without a task is ERROR."""
        self._fail(self.queue.reap())
        queued = self.queue.servers()
        for server in self.store.servers.list():
            if (server.status == BUILD or server.task_state is not None) and server.id not in queued:
                self.store.change(server.id, status=ERROR, task_state=None,
                                  fault="interrupted by an API server restart: delete and recreate it")

    def stop(self) -> None:
        """Claim no more tasks (call it as soon as the server is told to stop)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop claiming tasks; wait up to `timeout` s for running ones (any left are resumed at the next start)."""
        self.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
