"""Nova's os-aggregates (admin): named groups of compute hosts with metadata, kept in state.db.

Nova's scheduler filters hosts by their aggregates' metadata; the engine has one compute host and no such
filters, so an aggregate is what an operator records: its hosts must exist, a host joins an aggregate once,
an aggregate with hosts is not deleted. Its availability_zone is kept and shown (and mirrored in its metadata,
as Nova does); servers stay in the host's zone (api/compute/zones.py). Integer ids as Nova's, a uuid from 2.41.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.placement import Hosts
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import isotime, read_json, send
from api.microversion import Version
from provisioner.excerpt import cut

UUIDS = Version(2, 41)
AZ_KEY = "availability_zone"


@dataclass(frozen=True)
class Aggregate:
    """An aggregate; `id` is its integer id as text (the table's key)."""

    id: str
    uuid: str
    name: str
    availability_zone: str | None = None
    hosts: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    updated: float | None = None


def _admin(req: falcon.Request, rule: str) -> None:
    if not token_of(req).is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-aggregates:{rule} to be performed.")


def view(aggregate: Aggregate, version: Version, full: bool = True) -> dict[str, Any]:
    """An aggregate as Nova shows it; its create answer has no hosts or metadata (`full` False)."""
    body: dict[str, Any] = {"id": int(aggregate.id), "name": aggregate.name,
                            "availability_zone": aggregate.availability_zone, "created_at": isotime(aggregate.created),
                            "updated_at": isotime(aggregate.updated) if aggregate.updated else None,
                            "deleted_at": None, "deleted": False}
    if full:
        body.update(hosts=list(aggregate.hosts), metadata=aggregate.metadata)
    if version >= UUIDS:
        body["uuid"] = aggregate.uuid
    return body


class AggregateStore:
    """The aggregates table; writes run inside the caller's transaction."""

    def __init__(self, db: Database):
        self.db = db
        self.table = Table(db, "aggregates", Aggregate)

    def find(self, aggregate_id: str) -> Aggregate:
        """The aggregate with this id; NotFound as Nova words it."""
        found = self.table.get(aggregate_id) if aggregate_id.isascii() and aggregate_id.isdigit() else None
        if found is None:
            raise NotFound(f"Aggregate {cut(aggregate_id)} could not be found.")
        return found

    def refuse_name_taken(self, name: str, aggregate_id: str | None = None) -> None:
        """409 when another aggregate has this name."""
        if any(a.id != aggregate_id for a in self.table.list(name=name)):
            raise Conflict(f"Aggregate {cut(name)} already exists.")

    def next_id(self) -> str:
        """One more than the highest id there is (ids are not reused while the highest stays)."""
        return str(max((int(a.id) for a in self.table.list()), default=0) + 1)


def _with_zone(metadata: dict[str, str], zone: str | None) -> dict[str, str]:
    rest = {k: v for k, v in metadata.items() if k != AZ_KEY}
    return {**rest, AZ_KEY: zone} if zone is not None else rest


class Aggregates:
    """GET and POST /compute/v2.1/os-aggregates."""

    def __init__(self, config: ApiConfig, store: AggregateStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req, "index")
        send(resp, {"aggregates": [view(a, version_of(req)) for a in self.store.table.list()]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req, "create")
        body = read_json(req, self.config.max_json_body)["aggregate"]  # structure: api/openapi.yaml
        zone = body.get(AZ_KEY)
        with self.store.db.transaction():
            self.store.refuse_name_taken(body["name"])
            aggregate = Aggregate(id=self.store.next_id(), uuid=str(uuid.uuid4()), name=body["name"],
                                  availability_zone=zone, metadata=_with_zone({}, zone), created=time.time())
            self.store.table.insert(aggregate)
        send(resp, {"aggregate": view(aggregate, version_of(req), full=False)})


class AggregateItem:
    """GET, PUT and DELETE /compute/v2.1/os-aggregates/{id}."""

    def __init__(self, config: ApiConfig, store: AggregateStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, aggregate_id: str) -> None:
        _admin(req, "show")
        send(resp, {"aggregate": view(self.store.find(aggregate_id), version_of(req))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, aggregate_id: str) -> None:
        _admin(req, "update")
        body = read_json(req, self.config.max_json_body)["aggregate"]
        with self.store.db.transaction():
            aggregate = self.store.find(aggregate_id)
            if "name" in body:
                self.store.refuse_name_taken(body["name"], aggregate.id)
                aggregate = replace(aggregate, name=body["name"])
            if AZ_KEY in body:
                aggregate = replace(aggregate, availability_zone=body[AZ_KEY],
                                    metadata=_with_zone(aggregate.metadata, body[AZ_KEY]))
            aggregate = replace(aggregate, updated=time.time())
            self.store.table.update(aggregate)
        send(resp, {"aggregate": view(aggregate, version_of(req))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, aggregate_id: str) -> None:
        _admin(req, "delete")
        with self.store.db.transaction():
            aggregate = self.store.find(aggregate_id)
            if aggregate.hosts:
                raise BadRequest("aggregate", f"cannot delete aggregate {aggregate.id}: it still has hosts "
                                              f"({', '.join(aggregate.hosts)})")
            self.store.table.delete(aggregate.id)
        resp.status = 200


class AggregateAction:
    """POST /compute/v2.1/os-aggregates/{id}/action: add_host, remove_host, set_metadata (null unsets)."""

    def __init__(self, config: ApiConfig, store: AggregateStore, hosts: Hosts):
        self.config = config
        self.store = store
        self.hosts = hosts  # a host added must be a hypervisor's compute host

    def on_post(self, req: falcon.Request, resp: falcon.Response, aggregate_id: str) -> None:
        body = read_json(req, self.config.max_json_body)  # one of the three actions (api/openapi.yaml)
        action, arguments = next(iter(body.items()))
        _admin(req, action)
        with self.store.db.transaction():
            aggregate = self.store.find(aggregate_id)
            if action == "set_metadata":
                metadata = {**aggregate.metadata, **arguments["metadata"]}
                metadata = {k: v for k, v in metadata.items() if v is not None}
                aggregate = replace(aggregate, metadata=metadata, availability_zone=metadata.get(AZ_KEY))
            else:
                aggregate = self._hosts(aggregate, action, arguments["host"])
            aggregate = replace(aggregate, updated=time.time())
            self.store.table.update(aggregate)
        send(resp, {"aggregate": view(aggregate, version_of(req))})

    def _hosts(self, aggregate: Aggregate, action: str, host: str) -> Aggregate:
        if action == "add_host":
            if self.hosts.named(host) is None:
                raise NotFound(f"Compute host {cut(host)} could not be found.")
            if host in aggregate.hosts:
                raise Conflict(f"Aggregate {aggregate.id} already has host {cut(host)}.")
            return replace(aggregate, hosts=(*aggregate.hosts, host))
        if host not in aggregate.hosts:
            raise NotFound(f"Cannot remove host {cut(host)} in aggregate {aggregate.id}")
        return replace(aggregate, hosts=tuple(h for h in aggregate.hosts if h != host))
