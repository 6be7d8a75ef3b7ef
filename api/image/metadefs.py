"""Glance metadata definitions (metadefs): namespaces of documented image/flavor/volume properties.

A namespace is one record holding its objects, properties, tags and resource
type associations (Glance keeps them in five tables; here they are only ever
read and written through their namespace). Writing is for admins, as Glance's
default policy; a public namespace is readable by everyone, a private one by its
owner's project. The resource types are the ones this project's services have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from api.db import Database, Table
from api.errors import Conflict, Forbidden, NotFound, TooLarge
from api.http import isotime
from api.identity.tokens import Token
from provisioner.excerpt import cut

# The resource types a namespace can describe here: images, volumes, flavors and servers.
RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Server")
MAX_NAMESPACES = 1024
MAX_MEMBERS = 256  # objects, properties, tags or associations in one namespace
KINDS = ("objects", "properties", "tags", "resource_type_associations")
_EPOCH = time.time()  # the resource types' created_at: they exist from the start


@dataclass(frozen=True)
class Namespace:
    """A namespace and everything in it (each kind: name -> its definition, in insertion order)."""

    id: str  # the namespace's name
    project_id: str  # its owner
    display_name: str = ""
    description: str = ""
    visibility: str = "private"
    protected: bool = False
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_type_associations: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


def stamped(definition: dict[str, Any], created: float | None = None) -> dict[str, Any]:
    """`definition` with its created/updated times (epoch seconds, shown as ISO by the views)."""
    now = time.time()
    return {**definition, "created": created if created is not None else now, "updated": now}


def member_view(definition: dict[str, Any]) -> dict[str, Any]:
    """An object, tag or association as Glance shows it (properties carry no times in Glance)."""
    body = {k: v for k, v in definition.items() if k not in ("created", "updated")}
    return {**body, "created_at": isotime(definition["created"]), "updated_at": isotime(definition["updated"])}


def namespace_view(ns: Namespace, full: bool = False) -> dict[str, Any]:
    """A namespace as Glance shows it; `full` adds what it holds (Glance's show, not its list)."""
    body: dict[str, Any] = {
        "namespace": ns.id, "display_name": ns.display_name, "description": ns.description,
        "visibility": ns.visibility, "protected": ns.protected, "owner": ns.project_id,
        "created_at": isotime(ns.created), "updated_at": isotime(ns.updated),
        "self": f"/v2/metadefs/namespaces/{ns.id}", "schema": "/v2/schemas/metadefs/namespace"}
    if ns.resource_type_associations:
        body["resource_type_associations"] = [member_view(a) for a in ns.resource_type_associations.values()]
    if full:
        if ns.objects:
            body["objects"] = [member_view(o) for o in ns.objects.values()]
        if ns.properties:
            body["properties"] = {n: _property_view(p) for n, p in ns.properties.items()}
        if ns.tags:
            body["tags"] = [{"name": n} for n in ns.tags]
    return body


def _property_view(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in ("created", "updated", "name")}


def property_view(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """One property as Glance shows it alone (with its name)."""
    return {"name": name, **_property_view(definition)}


def resource_types_view() -> dict[str, Any]:
    """GET /v2/metadefs/resource_types."""
    when = isotime(_EPOCH)
    return {"resource_types": [{"name": n, "created_at": when, "updated_at": when} for n in RESOURCE_TYPES]}


class Metadefs:
    """The image_metadefs table: one record per namespace."""

    def __init__(self, db: Database):
        self.rows = Table(db, "image_metadefs", Namespace)

    def visible(self, token: Token) -> list[Namespace]:
        """The namespaces `token` may read: public ones, its project's, all for an admin."""
        return [n for n in self.rows.list()
                if token.is_admin or n.visibility == "public" or n.project_id == token.project_id]

    def get(self, token: Token, name: str) -> Namespace:
        """A namespace `token` may read; NotFound otherwise."""
        ns = self.rows.get(name)
        if ns is None or not (token.is_admin or ns.visibility == "public" or ns.project_id == token.project_id):
            raise NotFound(f"Metadata definition namespace={cut(name)} was not found.")
        return ns

    def writable(self, token: Token, name: str) -> Namespace:
        """A namespace `token` may change (admins only, as Glance's default policy)."""
        ns = self.get(token, name)
        _admin(token)
        return ns

    def create(self, token: Token, ns: Namespace) -> Namespace:
        """Store a new namespace; Conflict if the name is taken."""
        _admin(token)
        if self.rows.get(ns.id) is not None:
            raise Conflict(f"Metadata definition namespace={cut(ns.id)} already exists.")
        if len(self.rows.list()) >= MAX_NAMESPACES:
            raise TooLarge(f"this site keeps at most {MAX_NAMESPACES} metadata definition namespaces")
        _bounded(ns)
        now = time.time()
        return self.rows.insert(replace(ns, created=now, updated=now))

    def save(self, ns: Namespace) -> Namespace:
        """Store a changed namespace (its members bounded)."""
        _bounded(ns)
        return self.rows.update(replace(ns, updated=time.time()))

    def delete(self, token: Token, name: str) -> None:
        """Delete a namespace and all it holds; Forbidden while protected."""
        ns = self.writable(token, name)
        if ns.protected:
            raise Forbidden(f"Namespace {cut(name)} is protected and cannot be deleted.")
        self.rows.delete(ns.id)


def _admin(token: Token) -> None:
    if not token.is_admin:
        raise Forbidden("changing metadata definitions requires the admin role")


def _bounded(ns: Namespace) -> None:
    for kind in KINDS:
        if len(getattr(ns, kind)) > MAX_MEMBERS:
            raise TooLarge(f"a namespace holds at most {MAX_MEMBERS} {kind}")
