"""Cinder's group snapshots (microversion 3.14; a 404 before): a snapshot of every volume of a group at once,
each an ordinary snapshot (api.volume.worker) marked with the group snapshot's id. Its status follows its
snapshots' (creating until all are available, error if one failed) until an admin resets it (3.19).

A new group copied from a group snapshot (POST /groups/action create-from-src) gets a volume from each of its
snapshots (api.volume.groups).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

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
from api.volume.groups import GroupStore
from api.volume.models import AVAILABLE, CREATING, DELETING, ERROR, IN_USE, Snapshot
from api.volume.store import VolumeStore, invalid_volume
from api.volume.worker import VolumeWorker
from provisioner.excerpt import describe


@dataclass(frozen=True)
class GroupSnapshot:
    """A group snapshot; `status` is an admin's reset one (None: its snapshots' own)."""

    id: str
    name: str
    project_id: str
    group_id: str
    group_type_id: str
    description: str | None = None
    status: str | None = None
    created: float = 0.0


class GroupSnapshotStore:
    """The group snapshots (table api_volume_group_snapshots)."""

    def __init__(self, db: Database, volumes: VolumeStore, worker: VolumeWorker, quotas: QuotaStore,
                 groups: GroupStore):
        self.records = Table(db, "volume_group_snapshots", GroupSnapshot)
        self.volumes = volumes
        self.worker = worker
        self.quotas = quotas
        self.groups = groups

    def get(self, token: Token, snapshot_id: str) -> GroupSnapshot:
        """A group snapshot of the token's project (any, for an admin)."""
        found = self.records.get(snapshot_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"GroupSnapshot {describe(snapshot_id)} could not be found.")
        return found

    def members(self, snapshot_id: str) -> list[Snapshot]:
        """Its volumes' snapshots (not those being deleted)."""
        return [s for s in self.volumes.snapshots.list()
                if s.group_snapshot_id == snapshot_id and s.status != DELETING]

    def status(self, record: GroupSnapshot) -> str:
        """An admin's reset status, else its snapshots': error if one is, creating while one is, else
        available."""
        if record.status is not None:
            return record.status
        statuses = {s.status for s in self.members(record.id)}
        return ERROR if ERROR in statuses else CREATING if CREATING in statuses else AVAILABLE

    def take(self, token: Token, record: GroupSnapshot) -> None:
        """Record the group snapshot and a snapshot of each volume of its group (within the project's quotas),
        then queue their copies."""
        volumes = self.groups.members(record.group_id)
        busy = [v.id for v in volumes if v.status not in (AVAILABLE, IN_USE)]
        if busy:
            raise invalid_volume(f"volume {busy[0]} of group {record.group_id} is neither available nor in use")
        now = time.time()
        snapshots = [Snapshot(id=str(uuid.uuid4()), name=f"snapshot-{record.name}", project_id=token.project_id,
                              user_id=token.user_id, volume_id=v.id, size=v.size, created=now, updated=now,
                              group_snapshot_id=record.id, hypervisor=v.hypervisor) for v in volumes]
        with self.volumes.db.transaction():
            self.quotas.check(VOLUME, token.project_id, {"snapshots": len(snapshots),
                                                         "gigabytes": sum(s.size for s in snapshots)})
            self.records.insert(record)
            for snapshot in snapshots:
                self.volumes.snapshots.insert(snapshot)
        for snapshot in snapshots:
            self.worker.snapshot(snapshot)

    def source(self, token: Token, snapshot_id: str) -> tuple[str, list[Snapshot]]:
        """What a group copied from a group snapshot is made of: its group's id and its snapshots."""
        record = self.get(token, snapshot_id)
        return record.group_id, self.members(record.id)

    def count(self, group_id: str) -> int:
        """How many group snapshots a group has."""
        return sum(1 for r in self.records.list() if r.group_id == group_id)

    def delete(self, record: GroupSnapshot) -> None:
        """Delete its snapshots (as any snapshot is deleted) and forget it."""
        for snapshot in self.members(record.id):
            self.worker.delete_snapshot(self.volumes.start_delete_snapshot(snapshot))
        self.records.delete(record.id)


def _require_version(req: falcon.Request, needed: microversion.Version = microversion.GROUP_FROM_SOURCE) -> None:
    if microversion.version_of(req) < needed:
        raise NotFound(f"The resource could not be found (needs microversion {needed}).")


def group_snapshot_view(store: GroupSnapshotStore, record: GroupSnapshot) -> dict[str, Any]:
    """A group snapshot as Cinder shows it."""
    return {"id": record.id, "name": record.name, "description": record.description,
            "status": store.status(record), "group_id": record.group_id, "group_type_id": record.group_type_id,
            "created_at": isotime(record.created, micro=True)}


class GroupSnapshots:
    """GET /volume/v3/group_snapshots[/detail] (the project's; all_tenants for admins), POST (202)."""

    def __init__(self, config: ApiConfig, store: GroupSnapshotStore):
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
        found = self.store.records.list(VolumeStore.scope(token, all_projects))
        send(resp, {"group_snapshots": [group_snapshot_view(self.store, g) if detail else
                                        {"id": g.id, "name": g.name} for g in found]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req)
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)["group_snapshot"]  # of api/openapi.yaml's form
        group = self.store.groups.get(token, body["group_id"])
        if group.status != AVAILABLE:
            raise BadRequest("group_snapshot.group_id", f"Invalid group: group {group.id} is {group.status}: it "
                                                        "must be available")
        record = GroupSnapshot(id=str(uuid.uuid4()), name=body.get("name") or "", project_id=token.project_id,
                               group_id=group.id, group_type_id=group.group_type,
                               description=body.get("description"), created=time.time())
        self.store.take(token, record)
        send(resp, {"group_snapshot": {"id": record.id, "name": record.name, "group_type_id": record.group_type_id}},
             202)


class GroupSnapshotItem:
    """GET and DELETE (202, with its snapshots) /volume/v3/group_snapshots/{id}."""

    def __init__(self, store: GroupSnapshotStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_snapshot_id: str) -> None:
        _require_version(req)
        record = self.store.get(token_of(req), group_snapshot_id)
        send(resp, {"group_snapshot": group_snapshot_view(self.store, record)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_snapshot_id: str) -> None:
        _require_version(req)
        self.store.delete(self.store.get(token_of(req), group_snapshot_id))
        resp.status = 202


class GroupSnapshotActions:
    """POST /volume/v3/group_snapshots/{id}/action: reset_status (3.19, admin; 202)."""

    def __init__(self, config: ApiConfig, store: GroupSnapshotStore):
        self.config = config
        self.store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response, group_snapshot_id: str) -> None:
        _require_version(req, microversion.GROUP_SNAPSHOT_RESET_STATUS)
        token = token_of(req)
        record = self.store.get(token, group_snapshot_id)
        require_admin(token, "reset_status")
        status = read_json(req, self.config.max_json_body)["reset_status"]["status"]
        self.store.records.update(replace(record, status=status))
        resp.status = 202
