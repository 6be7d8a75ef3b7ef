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

From 2.54 `key_name` (null: none) and from 2.57 `user_data` (null: none;
the rules of a create's) change the record at once, and the rebuilt guest's
users, keys and user data are made anew from them, as a create makes them
(the admin keeps its password unless adminPass or the user data set one).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.builder import MAX_USER_DATA
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
from provisioner.errors import InputError
from provisioner.excerpt import cut
from provisioner.spec.cloudconfig import TenantUserData, read_user_data
from provisioner.spec.model import DomainSpec
from provisioner.spec.passwords import HASHED, PLAIN, hash_password, hash_plain_passwords

REBUILD = "REBUILD"
REBUILDABLE = (ACTIVE, SHUTOFF, ERROR)  # Nova rebuilds active, stopped and failed servers
# Rebuild's own arguments; the rest are update_request's (name, description, accessIPv4/6, OS-DCF:diskConfig).
# key_name and user_data reach here only from their microversion on (the schema's x-min-microversion).
OWN = ("imageRef", "adminPass", "metadata", "preserve_ephemeral", "key_name", "user_data")
KEY_NAME, USER_DATA = Version(2, 54), Version(2, 57)  # from which a rebuild takes key_name, user_data


def tenant_user_data(text: str | None, where: str, admin_user: str) -> TenantUserData:
    """A server's base64 user data as a create checks it (None: none); BadRequest naming `where`."""
    if text is None:
        return TenantUserData([], [], [], None, ())
    if len(text) > MAX_USER_DATA:
        raise BadRequest(where, f"is longer than {MAX_USER_DATA} characters")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise BadRequest(where, "is not base64-encoded UTF-8 text") from None
    try:
        return read_user_data(data, where, admin_user)
    except InputError as exc:
        raise BadRequest(exc.where, exc.message) from None


def with_password(spec: DomainSpec, password_hash: str) -> DomainSpec:
    """The spec with its admin user's password replaced by `password_hash`."""
    users = []
    for user in spec.users:
        if isinstance(user, dict) and user.get("name") == spec.admin_user:
            user = {**user, HASHED: password_hash, "lock_passwd": False}
        users.append(user)
    return replace(spec, users=tuple(users))


def with_guest_data(spec: DomainSpec, public_key: str | None, tenant: TenantUserData) -> DomainSpec:
    """The spec with its users, keys and user data made anew from a key pair's key and user data (as a create
    makes them); the admin keeps its password hash unless the user data gives it one."""
    users = list(tenant.users)
    admin = next((u for u in users if isinstance(u, dict) and u.get("name") == spec.admin_user), None)
    if admin is None:
        admin = {"name": spec.admin_user}
        users.append(admin)
    admin["ssh_authorized_keys"] = [*admin.get("ssh_authorized_keys", []), *([public_key] if public_key else []),
                                    *tenant.admin_keys]
    old = next((u for u in spec.users if isinstance(u, dict) and u.get("name") == spec.admin_user), {})
    if HASHED in old and PLAIN not in admin and HASHED not in admin:
        admin[HASHED] = old[HASHED]
        admin.setdefault("lock_passwd", old.get("lock_passwd", False))
    return replace(spec, users=hash_plain_passwords(users), packages=tuple(tenant.packages),
                   cloud_config=tenant.cloud_config, user_parts=tenant.parts)


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
        version = version_of(req)
        changes = update_request({k: v for k, v in arguments.items() if k not in OWN})
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
        guest = self._guest_changes(server, arguments, spec.admin_user)
        job = RebuildServer(server.id, image.to_image_ref(), hash_password(password) if password else None,
                            stopped=server.status == SHUTOFF, guest_data=bool(guest))
        changes.update(guest)
        rebuilt = self.store.change(server.id, image_id=image.id, status=REBUILD, task_state="rebuilding",
                                    fault=None, **changes)
        self.tasks.runner.submit(job)
        body = update_view(self.view(req, rebuilt or server), version)
        if version >= KEY_NAME:  # Nova's rebuild answer shows the key pair from 2.54, the user data from 2.57
            body["key_name"] = (rebuilt or server).key_name
        if version >= USER_DATA:
            body["user_data"] = (rebuilt or server).user_data
        send(resp, {"server": {**body, "adminPass": password or ""}}, 202)

    def _keypair_key(self, server: Server, key_name: str, where: str) -> str:
        """The public key of the server's user's key pair `key_name`; BadRequest if it has none such."""
        keypair = self.store.keypairs.get(f"{server.user_id}/{key_name}")
        if keypair is None:
            raise BadRequest(where, f"keypair {cut(key_name)} does not exist")
        if keypair.type != "ssh":  # an x509 certificate is no SSH key
            raise BadRequest(where, f"keypair {cut(key_name)} is an x509 certificate, not an SSH key")
        return keypair.public_key

    def _guest_changes(self, server: Server, arguments: dict[str, Any], admin_user: str) -> dict[str, Any]:
        """The record's new key_name and user_data (those the request gives), checked."""
        changes: dict[str, Any] = {}
        if "key_name" in arguments:
            key_name = arguments["key_name"]  # a string or null: the schema's
            if key_name is not None:
                self._keypair_key(server, key_name, "rebuild.key_name")
            changes["key_name"] = key_name
        if "user_data" in arguments:
            text = arguments["user_data"]
            tenant_user_data(text, "rebuild.user_data", admin_user)
            changes["user_data"] = text
        return changes

    def run(self, job: RebuildServer) -> None:
        """Re-apply the domain on the new image (a ProvisionError: `failed`)."""
        server = self.store.servers.get(job.server_id)
        if server is None or server.task_state == DELETING:
            return  # deleted meanwhile: the delete job destroys what there is
        spec = replace(current_spec(self.tasks.engine, server), image=job.image)
        if job.guest_data:
            try:
                key = self._keypair_key(server, server.key_name, "key_name") if server.key_name else None
            except BadRequest:
                key = None  # the key pair was deleted since the request: the guest gets no key from it
            spec = with_guest_data(spec, key, tenant_user_data(server.user_data, "user_data", spec.admin_user))
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
