"""Nova's migration records and GET /compute/v2.1/os-migrations (admin): a resize is a migration on the one
compute host (source and destination the same), from `migrating` through `finished` to `confirmed` or
`reverted` (`error` if its job failed). Records are kept in state.db with integer ids as Nova's; 2.23 adds
the type and links, 2.59 a uuid and paging (limit, marker)."""

from __future__ import annotations

import time
import uuid
import zlib
from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.views import HOST
from api.db import Database, Table
from api.errors import BadRequest, Forbidden
from api.http import isotime, send
from api.microversion import Version
from provisioner.excerpt import cut


@dataclass(frozen=True)
class Migration:
    """One resize of a server; `id` is its integer id as text."""

    id: str
    uuid: str
    server_id: str
    project_id: str
    user_id: str
    old_flavor_id: str
    new_flavor_id: str
    status: str
    created: float
    updated: float | None = None


def flavor_number(flavor_id: str) -> int:
    """Nova shows a flavor's integer row id here; a stable number derived from its id stands for it."""
    return zlib.crc32(flavor_id.encode())


class MigrationStore:
    """The migration records."""

    def __init__(self, db: Database):
        self.db = db
        self.table = Table(db, "migrations", Migration)

    def start(self, server_id: str, project_id: str, user_id: str, old: str, new: str) -> Migration:
        """Record a resize starting (call inside the transaction that admits it)."""
        number = max((int(m.id) for m in self.table.list()), default=0) + 1
        return self.table.insert(Migration(str(number), str(uuid.uuid4()), server_id, project_id, user_id, old, new,
                                           "migrating", time.time()))

    def advance(self, server_id: str, status: str) -> None:
        """Move the server's latest migration to `status`."""
        mine = [m for m in self.table.list() if m.server_id == server_id]
        if mine:
            self.table.update(replace(mine[-1], status=status, updated=time.time()))


def view(migration: Migration, version: Version, base_url: str) -> dict[str, Any]:
    """A migration as `version` shows it."""
    body: dict[str, Any] = {
        "id": int(migration.id), "status": migration.status, "instance_uuid": migration.server_id,
        "source_node": HOST, "source_compute": HOST, "dest_node": HOST, "dest_compute": HOST,
        "dest_host": "127.0.0.1", "old_instance_type_id": flavor_number(migration.old_flavor_id),
        "new_instance_type_id": flavor_number(migration.new_flavor_id), "created_at": isotime(migration.created),
        "updated_at": isotime(migration.updated) if migration.updated else None}
    if version >= Version(2, 23):
        body["migration_type"] = "resize"
        body["links"] = [{"rel": "self", "href": f"{base_url}/compute/v2.1/servers/{migration.server_id}/migrations/"
                                                 f"{migration.id}"},
                         {"rel": "bookmark", "href": f"{base_url}/compute/servers/{migration.server_id}/migrations/"
                                                     f"{migration.id}"}]
    if version >= Version(2, 59):
        body["uuid"] = migration.uuid
    return body


class Migrations:
    """GET /compute/v2.1/os-migrations with Nova's filters (instance_uuid, status, migration_type)."""

    def __init__(self, store: MigrationStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-migrations:index to be performed.")
        version = version_of(req)
        listed = list(reversed(self.store.table.list()))  # newest first, as Nova's
        for name, value in (("instance_uuid", lambda m: m.server_id), ("status", lambda m: m.status),
                            ("migration_type", lambda m: "resize")):
            wanted = req.get_param(name)
            if wanted is not None:
                listed = [m for m in listed if value(m) == wanted]
        body: dict[str, Any] = {"migrations": []}
        if version >= Version(2, 59):
            marker = req.get_param("marker")
            if marker is not None:
                index = next((i for i, m in enumerate(listed) if m.uuid == marker), None)
                if index is None:
                    raise BadRequest("marker", f"marker [{cut(marker)}] not found")
                listed = listed[index + 1:]
            limit = req.get_param_as_int("limit", min_value=0)
            if limit is not None and len(listed) > limit:
                listed = listed[:limit]
                if listed:
                    body["migrations_links"] = [{"rel": "next", "href": f"{req.prefix}/compute/v2.1/os-migrations?"
                                                                        f"limit={limit}&marker={listed[-1].uuid}"}]
        body["migrations"] = [view(m, version, req.prefix) for m in listed]
        send(resp, body)
