"""Server work that outlasts a request: build, delete and power actions, as jobs of the API's job queue.

Each is a typed record (api.jobs.records: BuildServer, DeleteServer,
PowerAction) run by a JobRunner thread of any API process (api.jobs), so a
request served by one process may queue work that another runs. One
server's jobs run in order (a delete sent during the build waits for it,
then destroys what it made); a job whose process died runs again on the
next start, so an interrupted build resumes (re-converging a spec is
idempotent). A failure leaves the server ERROR with the reason as its
fault (a failed power action only records the fault), and so does a job
dropped after its process died too often.
"""

from __future__ import annotations

from collections.abc import Callable

from api.compute.models import ACTIVE, BUILD, DELETING, ERROR, ComputeStore, Server
from api.compute.power import power
from api.engine import Engine
from api.errors import ApiError
from api.jobs.queue import JobQueue, QueuedJob
from api.jobs.records import SERVER, BuildServer, DeleteServer, PowerAction, ServerJob
from api.jobs.runner import JobRunner
from provisioner.spec.model import DomainSpec


class ServerTasks:
    """Queues and runs a server's build, delete and power jobs on `runner`."""

    def __init__(self, store: ComputeStore, engine: Engine, runner: JobRunner, stop_timeout: float,
                 uri_of: Callable[[Server], str]):
        self.store = store
        self.uri_of = uri_of  # the libvirt URI of a server's own hypervisor
        self.engine = engine
        self.runner = runner
        self.stop_timeout = stop_timeout
        # Called with a server's id once its domain is destroyed, before its record goes (volumes detach).
        self.on_destroyed: list[Callable[[str], None]] = []
        # Called with a build's spec before it is provisioned: a ProvisionError (its hypervisor is unreachable)
        # fails the build with that fault at once, instead of whatever a half-made apply would say.
        self.before_build: list[Callable[[DomainSpec], None]] = []
        # Called with a server's id once its build is provisioned (its volumes are in use).
        self.after_build: list[Callable[[str], None]] = []
        runner.register(BuildServer, self.run_build, self.build_failed, self.lost)
        runner.register(DeleteServer, self.run_delete, self.delete_failed, self.lost)
        runner.register(PowerAction, self.run_power, self.power_failed, self.lost)
        runner.on_recover.append(self.recover)

    def build(self, server: Server, spec: DomainSpec) -> QueuedJob:
        """Provision the server's domain: BUILD, then ACTIVE or ERROR with the fault."""
        return self.runner.submit(BuildServer(server.id, spec))

    def delete(self, server: Server) -> QueuedJob:
        """Destroy the server's domain, then forget the server (or ERROR with the fault)."""
        return self.runner.submit(DeleteServer(server.id, server.domain, self.uri_of(server)))

    def act(self, server: Server, uri: str, action: str) -> QueuedJob:
        """A power action; a failure leaves the status and records the fault."""
        return self.runner.submit(PowerAction(server.id, uri, server.domain, action))

    def run_build(self, job: BuildServer) -> None:
        """Provision the spec (ProvisionError: build_failed); ACTIVE unless a delete is under way."""
        for check in self.before_build:
            check(job.spec)
        self.engine.provision(job.spec)
        for hook in self.after_build:
            hook(job.server_id)
        self._finish(job.server_id, status=ACTIVE, fault=None)

    def build_failed(self, job: BuildServer, reason: str) -> None:
        """ERROR with the reason (unless a delete is under way: it follows)."""
        self._finish(job.server_id, status=ERROR, fault=reason)

    def run_delete(self, job: DeleteServer) -> None:
        """Destroy the domain, then the server's record."""
        self.engine.destroy(job.domain, job.uri)
        for hook in self.on_destroyed:
            hook(job.server_id)
        self.store.servers.delete(job.server_id)

    def delete_failed(self, job: DeleteServer, reason: str) -> None:
        """ERROR with the reason: the domain may be partly there; deleting again retries."""
        self.store.change(job.server_id, status=ERROR, task_state=None, fault=f"delete failed: {reason}")

    def run_power(self, job: PowerAction) -> None:
        """The action on the domain; a refusal (ApiError) is recorded by power_failed."""
        try:
            status = power(job.uri, job.domain, job.action, self.stop_timeout)
        except ApiError as exc:
            self.power_failed(job, exc.message)
            return
        self._finish(job.server_id, status=status, fault=None)

    def power_failed(self, job: PowerAction, reason: str) -> None:
        """The status stays (the guest is as it was); the fault says why."""
        self._finish(job.server_id, fault=reason)

    def lost(self, job: ServerJob, reason: str) -> None:
        """Any server job whose outcome is unknown: ERROR with the reason (the domain may be half-made)."""
        self.store.change(job.server_id, status=ERROR, task_state=None,
                          fault=f"{reason}; delete and recreate the server")

    def _finish(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)

    def recover(self, queue: JobQueue) -> None:
        """At start, after dead processes' jobs are requeued: a server left busy without a job is ERROR."""
        queued = queue.subjects(SERVER)
        for server in self.store.servers.list():
            if (server.status == BUILD or server.task_state is not None) and server.id not in queued:
                self.store.change(server.id, status=ERROR, task_state=None,
                                  fault="interrupted by an API server restart: delete and recreate it")
