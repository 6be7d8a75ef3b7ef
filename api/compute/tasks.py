"""Server work that outlasts a request: build, delete, power actions, on a thread pool.

Work on one server runs in order (a lock per server): a delete sent during
the build waits for the build to finish, then destroys what it made.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from api.compute.models import ACTIVE, BUILD, DELETING, ERROR, ComputeStore, Server
from api.compute.power import power
from api.engine import Engine
from api.errors import ApiError
from provisioner.errors import ProvisionError
from provisioner.spec.model import DomainSpec

log = logging.getLogger("api.compute")


class ServerTasks:
    """Runs each server's tasks in submission order, several servers at once."""

    def __init__(self, store: ComputeStore, engine: Engine, workers: int, stop_timeout: float):
        self.store = store
        self.engine = engine
        self.stop_timeout = stop_timeout
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="server-task")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, server_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(server_id, threading.Lock())

    def _submit(self, server_id: str, work: Callable[[], None]) -> Future:
        lock = self._lock(server_id)

        def run() -> None:
            with lock:
                try:
                    work()
                except Exception:
                    # A bug, not a provisioning failure: keep the worker alive, mark the server.
                    log.exception("task on server %s failed", server_id)
                    self.store.change(server_id, status=ERROR, task_state=None,
                                      fault="internal error: see the API server's log")
        return self.pool.submit(run)

    def build(self, server: Server, spec: DomainSpec) -> Future:
        """Provision the server's domain: BUILD, then ACTIVE or ERROR with the fault."""
        def work() -> None:
            try:
                self.engine.provision(spec)
            except ProvisionError as exc:
                self._finish(server.id, status=ERROR, fault=str(exc))
                return
            self._finish(server.id, status=ACTIVE, fault=None)
        return self._submit(server.id, work)

    def _finish(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)

    def delete(self, server: Server) -> Future:
        """Destroy the server's domain, then forget the server (or ERROR with the fault)."""
        def work() -> None:
            try:
                self.engine.destroy(server.domain)
            except ProvisionError as exc:
                self.store.change(server.id, status=ERROR, task_state=None, fault=f"delete failed: {exc}")
                return
            self.store.servers.delete(server.id)
        return self._submit(server.id, work)

    def act(self, server: Server, uri: str, action: str) -> Future:
        """A power action; a failure leaves the status and records the fault."""
        def work() -> None:
            try:
                status = power(uri, server.domain, action, self.stop_timeout)
            except ApiError as exc:
                self._finish(server.id, fault=exc.message)
                return
            self._finish(server.id, status=status, fault=None)
        return self._submit(server.id, work)

    def recover(self) -> None:
        """After a restart: builds and deletes that were running are not anymore; say so on the server."""
        for server in self.store.servers.list():
            if server.status == BUILD or server.task_state is not None:
                self.store.change(server.id, status=ERROR, task_state=None,
                                  fault="interrupted by an API server restart: delete and recreate it")

    def shutdown(self) -> None:
        """Stop taking tasks; queued ones are dropped, running ones finish."""
        self.pool.shutdown(wait=True, cancel_futures=True)
