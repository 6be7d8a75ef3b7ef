"""Nova's rebuild server action: the same server (id, ports and addresses, flavor, volumes) on a new image.

The request is checked whole, then the server's record takes the new image,
name, metadata and the other fields given (Nova shows them at once) and goes
REBUILD (task_state rebuilding) while a RebuildServer job (api.jobs) re-applies
its domain's spec.json with the new base image: a new root disk, the NICs and
attached volumes as they were. A given adminPass becomes the admin user's
password (a SHA-512 crypt hash in the spec, as a user_data password does);
without one the answer's adminPass is empty and the admin's login is as it
was (the guest has no agent to change a password later). A stopped server is
stopped again afterwards, as Nova keeps it. A failed or dropped job leaves the
server ERROR with the reason as its fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ACTIVE, DELETING, ERROR, SHUTOFF, ComputeStore, Server
from api.compute.resize import ActionHandler, current_spec, refuse_busy, stop_if
from api.compute.server_create import update_request
from api.compute.tasks import ServerTasks
from api.compute.views import update_view
from api.errors import ApiError, BadRequest, Conflict, Forbidden
from api.http import send
from api.image.catalog import ImageCatalog
from api.jobs.records import RebuildServer
from api.microversion import Version
from api.quota.models import COMPUTE
from api.quota.store import QuotaStore
from provisioner.excerpt import cut
from provisioner.spec.model import DomainSpec
from provisioner.spec.passwords import HASHED, hash_password

REBUILD = "REBUILD"
REBUILDABLE = (ACTIVE, SHUTOFF, ERROR)  # Nova rebuilds active, stopped and failed servers
# Rebuild's own arguments; the rest are update_request's (name, description, accessIPv4/6, OS-DCF:diskConfig).
OWN = ("imageRef", "adminPass", "metadata", "preserve_ephemeral")


def with_password(spec: DomainSpec, password_hash: str) -> DomainSpec:
    """The spec with its admin user's password replaced by `password_hash`."""
    users = []
    for user in spec.users:
        if isinstance(user, dict) and user.get("name") == spec.admin_user:
            user = {**user, HASHED: password_hash, "lock_passwd": False}
        users.append(user)
    return replace(spec, users=tuple(users))


class Rebuilds:
    """The rebuild action and its RebuildServer jobs."""

    def __init__(self, store: ComputeStore, tasks: ServerTasks, images: ImageCatalog, quotas: QuotaStore,
                 view: Callable[[falcon.Request, Server], dict[str, Any]]):
        self.store = store
        self.tasks = tasks
        self.images = images
        self.quotas = quotas
        self.view = view
        tasks.runner.register(RebuildServer, self.run, self.failed)

    def actions(self) -> dict[str, ActionHandler]:
        """The action names this module serves, for ServerAction."""
        return {"rebuild": self.rebuild}

    def rebuild(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Start a rebuild (202 with the server as it will be, and adminPass)."""
        # The arguments' shape is api/openapi.yaml's (checked by the hook); preserve_ephemeral is ignored (no
        # ephemeral disks: nothing to keep).
        image_id = arguments["imageRef"]
        password = arguments.get("adminPass")
        metadata = arguments.get("metadata")
        if metadata is not None:
            self.quotas.check_each(COMPUTE, server.project_id, {"metadata_items": len(metadata)})
        try:
            changes = update_request({k: v for k, v in arguments.items() if k not in OWN}, version_of(req))
        except BadRequest as exc:  # the same fields as a PUT, named as this action's
            raise BadRequest("", exc.message.replace("server.", "rebuild.", 1)) from None
        try:
            image = self.images.record(token_of(req), image_id)
        except (Conflict, Forbidden) as exc:
            raise BadRequest("rebuild.imageRef", f"image {cut(image_id)} is not active: {exc.message}") from None
        except ApiError:
            raise BadRequest("rebuild.imageRef", f"image {cut(image_id)} does not exist or has no data yet") from None
        refuse_busy(server, "rebuild", REBUILDABLE)
        spec = current_spec(self.tasks.engine, server)
        if image.virtual_size > spec.size:
            raise BadRequest("rebuild.imageRef", f"image {image.name} ({image.virtual_size} bytes) is larger "
                                                 f"than the server's disk ({spec.size} bytes)")
        if metadata is not None:
            changes["metadata"] = metadata
        job = RebuildServer(server.id, image.to_image_ref(), hash_password(password) if password else None,
                            stopped=server.status == SHUTOFF)
        rebuilt = self.store.change(server.id, image_id=image.id, status=REBUILD, task_state="rebuilding",
                                    fault=None, **changes)
        self.tasks.runner.submit(job)
        body = update_view(self.view(req, rebuilt or server), version_of(req))
        if version_of(req) >= Version(2, 57):  # the user data the server was built with (a rebuild keeps it)
            body["user_data"] = (rebuilt or server).user_data
        send(resp, {"server": {**body, "adminPass": password or ""}}, 202)

    def run(self, job: RebuildServer) -> None:
        """Re-apply the domain on the new image (a ProvisionError: `failed`)."""
        server = self.store.servers.get(job.server_id)
        if server is None or server.task_state == DELETING:
            return  # deleted meanwhile: the delete job destroys what there is
        spec = replace(current_spec(self.tasks.engine, server), image=job.image)
        if job.password_hash:
            spec = with_password(spec, job.password_hash)
        self.tasks.engine.provision(spec)
        status = stop_if(job.stopped, spec, server.domain, self.tasks.stop_timeout)
        self._finish(server.id, status=status, fault=None)

    def failed(self, job: RebuildServer, reason: str) -> None:
        """ERROR with the reason: the domain may be on either image."""
        self._finish(job.server_id, status=ERROR, fault=f"rebuild failed: {reason}")

    def _finish(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)
