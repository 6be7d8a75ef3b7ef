"""Server work that outlasts a request: build, delete, power actions, as tasks of a named kind.

A task is a server id, a kind and JSON-able arguments; `ServerTasks` runs
it with the method registered for its kind. Work on one server runs in
order: a delete sent during the build waits for the build to finish, then
destroys what it made.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from api.compute.models import ACTIVE, BUILD, DELETING, ERROR, ComputeStore, Server
from api.compute.power import power
from api.compute.spec_codec import spec_from_json
from api.engine import Engine
from api.errors import ApiError
from provisioner.errors import ProvisionError
from provisioner.spec.model import DomainSpec

log = logging.getLogger("api.compute")


@dataclass(frozen=True)
class Task:
    """One unit of work on a server: `kind` names the handler, `args` is what it needs (JSON-able)."""

    server_id: str
    kind: str
    args: dict[str, Any]


class ServerTasks:
    """Runs each server's tasks in submission order, several servers at once.

    A kind is handled by one method taking the task; add a kind by adding
    its method to `self.handlers`.
    """

    def __init__(self, store: ComputeStore, engine: Engine, workers: int, stop_timeout: float):
        self.store = store
        self.engine = engine
        self.stop_timeout = stop_timeout
        self.handlers: dict[str, Callable[[Task], None]] = {
            "build": self.run_build, "delete": self.run_delete, "power": self.run_power}
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="server-task")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, server_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(server_id, threading.Lock())

    def submit(self, server_id: str, kind: str, args: dict[str, Any]) -> Task:
        """Queue a task of `kind` (a key of `handlers`) on the server, after the ones already queued for it."""
        if kind not in self.handlers:
            raise ValueError(f"unknown server task kind {kind!r}")
        task = Task(server_id, kind, args)
        lock = self._lock(server_id)

        def run() -> None:
            with lock:
                self._run(task)
        self.pool.submit(run)
        return task

    def _run(self, task: Task) -> None:
        try:
            self.handlers[task.kind](task)
        except Exception:
            # A bug, not a provisioning failure: keep the worker alive, mark the server.
            log.exception("%s task on server %s failed", task.kind, task.server_id)
            self.store.change(task.server_id, status=ERROR, task_state=None,
                              fault="internal error: see the API server's log")

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
            self._finish(task.server_id, status=ERROR, fault=str(exc))
            return
        self._finish(task.server_id, status=ACTIVE, fault=None)

    def run_delete(self, task: Task) -> None:
        """The `delete` kind: args {domain}; destroys the domain, then the server record."""
        try:
            self.engine.destroy(task.args["domain"])
        except ProvisionError as exc:
            self.store.change(task.server_id, status=ERROR, task_state=None, fault=f"delete failed: {exc}")
            return
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
        """After a restart: builds and deletes that were running are not anymore; say so on the server."""
        for server in self.store.servers.list():
            if server.status == BUILD or server.task_state is not None:
                self.store.change(server.id, status=ERROR, task_state=None,
                                  fault="interrupted by an API server restart: delete and recreate it")

    def shutdown(self) -> None:
        """Stop taking tasks; queued ones are dropped, running ones finish."""
        self.pool.shutdown(wait=True, cancel_futures=True)
