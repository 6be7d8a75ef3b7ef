"""Nova's resize, confirmResize and revertResize server actions.

A resize re-applies the server's domain (its workspace's spec.json) with the
new flavor's vCPUs and RAM, as a ResizeServer job (api.jobs): the server is
RESIZE while it runs, then VERIFY_RESIZE on the new flavor. confirmResize
keeps it (ACTIVE, or SHUTOFF for a server that was stopped); revertResize
re-applies the old flavor (REVERT_RESIZE, then ACTIVE or SHUTOFF). The
pending resize (old and new flavor, whether the server was stopped) is a row
of api_server_resizes until it is confirmed or reverted; each resize is also a
migration record (api/compute/migrations.py) as Nova lists them.

The root disk keeps its size: the libvirt volume's capacity cannot change in
place (a new capacity replaces the volume, and the guest's data with it), so a
flavor with a smaller disk than the current one is refused, as Nova refuses a
disk resize down, and a larger one is recorded, not grown. A bigger flavor
must fit the project's cores and RAM quotas (403, as Nova); the usage counts
the old flavor until the job has run. A failed or dropped job leaves the
server ERROR with the reason as its fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.migrations import MigrationStore
from api.compute.models import ACTIVE, DELETING, ERROR, SHUTOFF, ComputeStore, Server
from api.compute.power import power
from api.compute.tasks import ServerTasks
from api.config import Flavor
from api.db import Table
from api.engine import Engine
from api.errors import BadRequest, Conflict
from api.jobs.records import ResizeServer
from api.quota.models import COMPUTE
from api.quota.store import QuotaStore
from provisioner.errors import InputError
from provisioner.excerpt import cut
from provisioner.spec.codec import spec_from_json
from provisioner.spec.model import DomainSpec

RESIZE, VERIFY_RESIZE, REVERT_RESIZE = "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE"
RESIZABLE = (ACTIVE, SHUTOFF)  # Nova resizes active and stopped servers
# The signature of an action handler ServerAction dispatches to: (request, response, server, action arguments).
ActionHandler = Callable[[falcon.Request, falcon.Response, Server, Any], None]


@dataclass(frozen=True)
class PendingResize:
    """A resize done but not yet confirmed or reverted; `id` is the server's id."""

    id: str
    project_id: str
    old_flavor_id: str
    new_flavor_id: str
    stopped: bool  # the server was SHUTOFF: it is stopped again after each re-apply
    # The old flavor's vCPUs and RAM (MiB), which a revert re-applies even if the flavor is deleted meanwhile
    # (Nova keeps a copy of it in the instance): the flavor's, or the domain's if it was deleted already; 0
    # when neither was known at the resize.
    old_vcpus: int = 0
    old_ram: int = 0


def current_spec(engine: Engine, server: Server) -> DomainSpec:
    """The server's DomainSpec as last provisioned (its workspace's spec.json)."""
    path = engine.layout.domain_dir(server.domain) / "spec.json"
    return spec_from_json(json.loads(path.read_text()))


def refuse_busy(server: Server, action: str, allowed: Iterable[str]) -> None:
    """Nova's 409 for an action on a server in another state, or with a task under way."""
    if server.status not in allowed or server.task_state is not None:
        task = f", task_state {server.task_state}" if server.task_state else ""
        raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state "
                       f"{server.status.lower()}{task}")


def stop_if(stopped: bool, spec: DomainSpec, domain: str, stop_timeout: float) -> str:
    """After a re-apply (which leaves the guest running): stop it again if it was stopped; the new status."""
    return power(spec.libvirt_uri, domain, "stop", stop_timeout) if stopped else ACTIVE


class Resizes:
    """The resize actions and their ResizeServer jobs."""

    def __init__(self, store: ComputeStore, tasks: ServerTasks, flavors: Callable[[], Iterable[Flavor]],
                 quotas: QuotaStore, migrations: MigrationStore):
        self.store = store
        self.migrations = migrations
        self.tasks = tasks
        self.flavors = flavors
        self.quotas = quotas
        self.pending = Table(store.db, "server_resizes", PendingResize)
        tasks.runner.register(ResizeServer, self.run, self.failed)
        tasks.on_destroyed.append(self.pending.delete)

    def actions(self) -> dict[str, ActionHandler]:
        """The action names this module serves, for ServerAction."""
        return {"resize": self.resize, "confirmResize": self.confirm, "revertResize": self.revert}

    def _flavor(self, flavor_id: str) -> Flavor | None:
        return next((f for f in self.flavors() if f.id == flavor_id), None)

    def resize(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Start a resize to `flavorRef` (202): RESIZE, then VERIFY_RESIZE once re-applied."""
        # The arguments' shape is api/openapi.yaml's (checked by the hook); what needs the flavors is here.
        disk_config = arguments.get("OS-DCF:diskConfig", server.disk_config)
        flavor_ref = arguments["flavorRef"]
        new = self._flavor(str(flavor_ref))
        if new is None:
            raise BadRequest("resize.flavorRef", f"flavor {cut(str(flavor_ref))} does not exist")
        refuse_busy(server, "resize", RESIZABLE)
        if new.id == server.flavor_id:
            raise BadRequest("resize.flavorRef", "When resizing, instances must change flavor!")
        old = self._flavor(server.flavor_id)
        if old is not None and new.disk and new.disk < old.disk:
            raise BadRequest("resize.flavorRef", f"flavor {new.name}'s disk ({new.disk} GiB) is smaller than the "
                                                 f"server's ({old.disk} GiB): a disk is never resized down")
        old_vcpus, old_ram = (old.vcpus, old.ram) if old else self._domain_size(server)
        record = PendingResize(server.id, server.project_id, server.flavor_id, new.id, server.status == SHUTOFF,
                               old_vcpus, old_ram)
        with self.store.db.transaction():
            if old is not None:  # Nova's 403 when the bigger flavor would pass the cores or RAM quota
                self.quotas.check(COMPUTE, server.project_id, {"cores": new.vcpus - old.vcpus,
                                                               "ram": new.ram - old.ram})
            self.pending.delete(server.id)
            self.pending.insert(record)
            self.migrations.start(server.id, server.project_id, token_of(req).user_id, server.flavor_id, new.id)
        self.store.change(server.id, status=RESIZE, task_state="resize_prep", disk_config=disk_config)
        self.tasks.runner.submit(ResizeServer(server.id, new.id))
        resp.status = 202

    def _domain_size(self, server: Server) -> tuple[int, int]:
        """(vCPUs, RAM in MiB) of the server's domain as last applied; (0, 0) if its spec is unreadable."""
        try:
            spec = current_spec(self.tasks.engine, server)
        except (OSError, ValueError, InputError):  # the job's own read reports a damaged spec
            return 0, 0
        return spec.cpus, spec.memory

    def confirm(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Keep the new flavor (204): ACTIVE, or SHUTOFF if the server was stopped."""
        record = self._pending(server)
        refuse_busy(server, "confirmResize", (VERIFY_RESIZE,))
        self.pending.delete(server.id)
        self.migrations.advance(server.id, "confirmed")
        self.store.change(server.id, status=SHUTOFF if record.stopped else ACTIVE, task_state=None)
        resp.status = 204

    def revert(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Go back to the old flavor (202): REVERT_RESIZE, then ACTIVE or SHUTOFF once re-applied."""
        record = self._pending(server)
        refuse_busy(server, "revertResize", (VERIFY_RESIZE,))
        self.store.change(server.id, status=REVERT_RESIZE, task_state="resize_reverting")
        self.migrations.advance(server.id, "reverting")
        self.tasks.runner.submit(ResizeServer(server.id, record.old_flavor_id, revert=True))
        resp.status = 202

    def _pending(self, server: Server) -> PendingResize:
        record = self.pending.get(server.id)
        if record is None:
            raise BadRequest("body", "Instance has not been resized.")
        return record

    def run(self, job: ResizeServer) -> None:
        """Re-apply the domain with the flavor's vCPUs and RAM (a ProvisionError: `failed`)."""
        server = self.store.servers.get(job.server_id)
        record = self.pending.get(job.server_id)
        if server is None or server.task_state == DELETING or record is None:
            return  # deleted meanwhile: the delete job destroys what there is
        flavor = self._flavor(job.flavor_id)
        if flavor is not None:
            vcpus, ram = flavor.vcpus, flavor.ram
        elif job.revert and record.old_vcpus:
            vcpus, ram = record.old_vcpus, record.old_ram
        else:
            self.failed(job, f"flavor {job.flavor_id} was deleted before the resize ran")
            return
        spec = replace(current_spec(self.tasks.engine, server), memory=ram, cpus=vcpus)
        self.tasks.engine.provision(spec)
        status = stop_if(record.stopped, spec, server.domain, self.tasks.stop_timeout)
        if job.revert:
            self.pending.delete(server.id)
        else:
            status = VERIFY_RESIZE
        self.migrations.advance(server.id, "reverted" if job.revert else "finished")
        self._finish(server.id, status=status, flavor_id=job.flavor_id, fault=None)

    def failed(self, job: ResizeServer, reason: str) -> None:
        """ERROR with the reason: the domain may be on either flavor; the pending resize is dropped."""
        self.pending.delete(job.server_id)
        self.migrations.advance(job.server_id, "error")
        what = "revert of the resize" if job.revert else f"resize to flavor {job.flavor_id}"
        self._finish(job.server_id, status=ERROR, fault=f"{what} failed: {reason}")

    def _finish(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)
