"""Cinder's generic volume groups (microversion 3.13; a 404 before): a project's named set of volumes of a
group type and some volume types. A group needs no backend work (every volume lives on the one backend), so it
is available at once; its volumes are created, copied and deleted as any volume is (api.volume.worker).

POST /groups/action create-from-src (3.14) copies every volume of a source group (or every snapshot of a group
snapshot, api.volume.group_snapshots) into a new one;
reset_status (3.20) is an admin's.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.identity.tokens import Token
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume import microversion
from api.volume.group_types import GroupTypeStore
from api.volume.models import AVAILABLE, DELETING, IN_USE, Snapshot, Volume
from api.volume.store import VolumeStore
from api.volume.types import DEFAULT_ID, DEFAULT_NAME, TypeStore, boolish
from api.volume.worker import VolumeWorker
from provisioner.excerpt import describe

STATUSES = ("creating", "available", "error", "deleting", "error_deleting", "updating")


@dataclass(frozen=True)
class Group:
    """A group of volumes of one project."""

    id: str
    name: str
    project_id: str
    user_id: str
    group_type: str  # its group type's id
    volume_types: tuple[str, ...]  # ids of the volume types its volumes may have
    description: str | None = None
    status: str = AVAILABLE
    source_group_id: str | None = None
    group_snapshot_id: str | None = None
    created: float = 0.0


def group_view(group: Group, version: microversion.Version) -> dict[str, Any]:
    """A group as Cinder shows it (3.38 adds replication_status)."""
    body: dict[str, Any] = {
        "id": group.id, "name": group.name, "description": group.description, "status": group.status,
        "availability_zone": "nova", "created_at": isotime(group.created, micro=True),
        "group_type": group.group_type, "volume_types": list(group.volume_types),
        "group_snapshot_id": group.group_snapshot_id, "source_group_id": group.source_group_id}
    if version >= microversion.GROUP_REPLICATION:
        body["replication_status"] = "disabled"
    return body


def _require_version(req: falcon.Request, needed: microversion.Version = microversion.GROUPS) -> None:
    if microversion.version_of(req) < needed:
        raise NotFound(f"The resource could not be found (needs microversion {needed}).")


def _ids(text: str | None) -> list[str]:
    """Cinder's add_volumes/remove_volumes: ids separated by commas."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class GroupStore:
    """The groups (table api_volume_groups) and the volumes in them."""

    def __init__(self, db: Database, volumes: VolumeStore, worker: VolumeWorker, quotas: QuotaStore,
                 types: TypeStore, group_types: GroupTypeStore):
        self.groups = Table(db, "volume_groups", Group)
        self.volumes = volumes
        self.worker = worker
        self.quotas = quotas
        self.types = types
        self.group_types = group_types
        self._lock = threading.Lock()

    def get(self, token: Token, group_id: str) -> Group:
        """A group of the token's project (any, for an admin)."""
        found = self.groups.get(group_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Group {describe(group_id)} could not be found.")
        return found

    def members(self, group_id: str) -> list[Volume]:
        """The volumes in a group (not those being deleted)."""
        return [v for v in self.volumes.volumes.list() if v.group_id == group_id and v.status != DELETING]

    def change(self, group_id: str, **changes: Any) -> None:
        """Update a stored group."""
        with self._lock:
            current = self.groups.get(group_id)
            if current is not None:
                self.groups.update(replace(current, **changes))

    def check_type(self, group: Group, type_name: str) -> None:
        """A volume may join a group only with one of the group's volume types (a volume records its type's
        name, a group its types' ids)."""
        names = {DEFAULT_NAME if t == DEFAULT_ID else getattr(self.types.types.get(t), "name", None)
                 for t in group.volume_types}
        if type_name not in names:
            raise BadRequest("volume.volume_type", f"Invalid volume_type provided: {describe(type_name)} is not "
                                                   f"one of group {group.id}'s volume types")

    def copy_from(self, token: Token, source: Group, group: Group) -> None:
        """Record the new group and a copy of every volume of `source` in it (within the project's quotas),
        then queue their creates."""
        now = time.time()
        copies = [Volume(id=str(uuid.uuid4()), name=v.name, description=v.description, project_id=token.project_id,
                         user_id=token.user_id, size=v.size, created=now, updated=now, volume_type=v.volume_type,
                         source_volid=v.id, bootable=v.bootable, group_id=group.id, hypervisor=v.hypervisor,
                         availability_zone=v.availability_zone)  # on its source's hypervisor
                  for v in self.members(source.id)]
        busy = [v.id for v in self.members(source.id) if v.status not in (AVAILABLE, IN_USE)]
        if busy:
            raise BadRequest("create-from-src.source_group_id", f"Invalid group: volume {busy[0]} of group "
                                                                f"{source.id} is neither available nor in use")
        self._insert(token, group, copies)

    def _insert(self, token: Token, group: Group, copies: list[Volume]) -> None:
        with self.volumes.db.transaction():  # count and insert at once, as a volume create
            self.quotas.check(VOLUME, token.project_id, {"volumes": len(copies),
                                                         "gigabytes": sum(v.size for v in copies)})
            self.groups.insert(group)
            for copy in copies:
                self.volumes.volumes.insert(copy)
        for copy in copies:
            self.worker.create(copy)

    def copy_from_snapshots(self, token: Token, snapshots: list[Snapshot], group: Group) -> None:
        """Record the new group and a volume copied from each snapshot in it (of its volume's type, within the
        project's quotas), then queue their creates."""
        if any(s.status != AVAILABLE for s in snapshots):
            raise BadRequest("create-from-src.group_snapshot_id", "Invalid group snapshot: its snapshots must all "
                                                                  "be available")
        now = time.time()
        copies = []
        for snapshot in snapshots:
            source = self.volumes.volumes.get(snapshot.volume_id)
            copies.append(Volume(id=str(uuid.uuid4()), name=snapshot.name, project_id=token.project_id,
                                 user_id=token.user_id, size=snapshot.size, created=now, updated=now,
                                 volume_type=source.volume_type if source else DEFAULT_NAME,
                                 snapshot_id=snapshot.id, group_id=group.id, hypervisor=snapshot.hypervisor,
                                 availability_zone=source.availability_zone if source else "nova"))
        self._insert(token, group, copies)

    def delete(self, group: Group, with_volumes: bool, group_snapshots: int) -> None:
        """Forget a group; with its volumes (each deleted as a volume is), or refused while it has some, and
        refused while it has `group_snapshots`."""
        if group_snapshots:
            raise BadRequest("delete", f"Invalid group: group {group.id} still has {group_snapshots} group "
                                       "snapshots: delete them first")
        members = self.members(group.id)
        if members and not with_volumes:
            raise BadRequest("delete.delete-volumes", f"Invalid group: group {group.id} still has volumes: delete "
                                                      "them with it (delete-volumes) or remove them first")
        started = [self.volumes.start_delete(v) for v in members]  # each refused if it is attached or busy
        for volume in started:
            self.worker.delete(volume)
        self.groups.delete(group.id)


class Groups:
    """GET /volume/v3/groups[/detail] (the project's; all_tenants for admins), POST (202)."""

    def __init__(self, config: ApiConfig, store: GroupStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        _require_version(req)
        token = token_of(req)
        all_projects = req.get_param_as_bool("all_tenants", default=False) or False
        found = self.store.groups.list(VolumeStore.scope(token, all_projects))
        version = microversion.version_of(req)
        views = [group_view(g, version) if detail else {"id": g.id, "name": g.name} for g in found]
        send(resp, {"groups": views})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req)
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)["group"]  # of api/openapi.yaml's form
        gtype = self.store.group_types.get(token, body["group_type"])
        vtypes = [self.store.types.get(token, t) for t in body["volume_types"]]
        group = Group(id=str(uuid.uuid4()), name=body.get("name") or "", description=body.get("description"),
                      project_id=token.project_id, user_id=token.user_id, group_type=gtype.id,
                      volume_types=tuple(t.id for t in vtypes), created=time.time())
        self.store.groups.insert(group)
        send(resp, {"group": {"id": group.id, "name": group.name}}, 202)


class GroupsAction:
    """POST /volume/v3/groups/action: create-from-src (3.14) of a source group or a group snapshot (202).
    `snapshot_source(token, id)`: a group snapshot's group id and its snapshots (api.volume.group_snapshots)."""

    def __init__(self, config: ApiConfig, store: GroupStore,
                 snapshot_source: Callable[[Token, str], tuple[str, list[Snapshot]]]):
        self.config = config
        self.store = store
        self.snapshot_source = snapshot_source

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req, microversion.GROUP_FROM_SOURCE)
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)["create-from-src"]
        snapshot_id, source_id = body.get("group_snapshot_id"), body.get("source_group_id")
        if bool(snapshot_id) == bool(source_id):
            raise BadRequest("create-from-src", "give one of group_snapshot_id and source_group_id")
        if snapshot_id:
            group_id, snapshots = self.snapshot_source(token, snapshot_id)
            source = self.store.get(token, group_id)
        else:
            source = self.store.get(token, source_id)
        group = Group(id=str(uuid.uuid4()), name=body.get("name") or "", description=body.get("description"),
                      project_id=token.project_id, user_id=token.user_id, group_type=source.group_type,
                      volume_types=source.volume_types, source_group_id=source_id,
                      group_snapshot_id=snapshot_id, created=time.time())
        if snapshot_id:
            self.store.copy_from_snapshots(token, snapshots, group)
        else:
            self.store.copy_from(token, source, group)
        send(resp, {"group": {"id": group.id, "name": group.name}}, 202)


class GroupItem:
    """GET and PUT (name, description, add_volumes, remove_volumes: 202) /volume/v3/groups/{id}."""

    def __init__(self, config: ApiConfig, store: GroupStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, volume_group_id: str) -> None:
        _require_version(req)
        send(resp, {"group": group_view(self.store.get(token_of(req), volume_group_id), microversion.version_of(req))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, volume_group_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        group = self.store.get(token, volume_group_id)
        body = read_json(req, self.config.max_json_body)["group"]  # of api/openapi.yaml's form
        changes = {k: body[k] for k in ("name", "description") if k in body}
        added, removed = _ids(body.get("add_volumes")), _ids(body.get("remove_volumes"))
        if not changes and not added and not removed:
            raise BadRequest("group", "give at least one of name, description, add_volumes and remove_volumes")
        members = {v.id for v in self.store.members(group.id)}
        for volume_id in removed:
            if volume_id not in members:
                raise BadRequest("group.remove_volumes", f"volume {describe(volume_id)} is not in group {group.id}")
        to_add = []
        for volume_id in added:
            volume = self.store.volumes.volume(token, volume_id)
            if volume.group_id is not None and volume.group_id != group.id:
                raise BadRequest("group.add_volumes", f"volume {volume.id} is already in group {volume.group_id}")
            if volume.status not in (AVAILABLE, IN_USE):
                raise BadRequest("group.add_volumes", f"volume {volume.id} is {volume.status}: it must be "
                                                      "available or in-use")
            self.store.check_type(group, volume.volume_type)
            to_add.append(volume)
        for volume_id in removed:
            self.store.volumes.change(volume_id, group_id=None)
        for volume in to_add:
            self.store.volumes.change(volume.id, group_id=group.id)
        if changes:
            self.store.change(group.id, **changes)
        resp.status = 202


class GroupActions:
    """POST /volume/v3/groups/{id}/action: delete (with delete-volumes), reset_status (3.20, admin); 202.
    `snapshot_count(group_id)`: how many group snapshots the group has."""

    def __init__(self, config: ApiConfig, store: GroupStore, snapshot_count: Callable[[str], int]):
        self.config = config
        self.store = store
        self.snapshot_count = snapshot_count

    def on_post(self, req: falcon.Request, resp: falcon.Response, volume_group_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        group = self.store.get(token, volume_group_id)
        action, args = next(iter(read_json(req, self.config.max_json_body).items()))  # one, of the spec's
        if action == "delete":
            flag = (args or {}).get("delete-volumes")
            self.store.delete(group, flag is not None and boolish(flag), self.snapshot_count(group.id))
        else:
            _require_version(req, microversion.GROUP_RESET_STATUS)
            require_admin(token, "reset_status")
            self.store.change(group.id, status=args["status"])
        resp.status = 202
