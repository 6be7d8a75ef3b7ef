"""Glance's metadefs API: /image/v2/metadefs/namespaces[/{namespace}[/objects|properties|tags|resource_types]].

Request bodies are checked by api/openapi.yaml; here: who may read or write, names
taken or missing, and renames (an object, property or tag's PUT may change its name).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import Conflict, NotFound
from api.http import read_json, send
from api.image.metadefs import (RESOURCE_TYPES, Metadefs, Namespace, member_view, namespace_view, property_view,
                                resource_types_view, stamped)
from provisioner.excerpt import cut

_NAMESPACE_FIELDS = ("display_name", "description", "visibility", "protected")
READ_ONLY = ("created_at", "updated_at", "schema", "self")


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """A definition without the read-only members a client may send back from a GET (Glance ignores them)."""
    return {k: v for k, v in body.items() if k not in READ_ONLY}


def _members(ns: Namespace, kind: str) -> dict[str, dict[str, Any]]:
    return dict(getattr(ns, kind))


def _new_namespace(token_project: str, body: dict[str, Any]) -> Namespace:
    """A namespace from a create request, with what it holds from the start."""
    ns = Namespace(id=body["namespace"], project_id=body.get("owner") or token_project,
                   **{k: body[k] for k in _NAMESPACE_FIELDS if body.get(k) is not None})
    for item in body.get("resource_type_associations") or []:
        _known_resource_type(item["name"])
    return replace(
        ns,
        objects={o["name"]: stamped(_clean(o)) for o in body.get("objects") or []},
        properties={n: stamped({**_clean(p), "name": n}) for n, p in (body.get("properties") or {}).items()},
        tags={t["name"]: stamped(_clean(t)) for t in body.get("tags") or []},
        resource_type_associations={a["name"]: stamped(_clean(a))
                                    for a in body.get("resource_type_associations") or []})


def _known_resource_type(name: str) -> None:
    if name not in RESOURCE_TYPES:
        raise NotFound(f"Resource type {cut(name)} was not found: known are {', '.join(RESOURCE_TYPES)}")


class ResourceTypes:
    """GET /image/v2/metadefs/resource_types."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token_of(req)
        send(resp, resource_types_view())


class Namespaces:
    """GET and POST /image/v2/metadefs/namespaces (filters: visibility, resource_types)."""

    def __init__(self, config: ApiConfig, metadefs: Metadefs):
        self.config = config
        self.metadefs = metadefs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self.metadefs.visible(token_of(req))
        visibility = req.get_param("visibility")
        if visibility is not None:
            found = [n for n in found if n.visibility == visibility]
        wanted = req.get_param_as_list("resource_types")
        if wanted:
            found = [n for n in found if set(wanted) & set(n.resource_type_associations)]
        send(resp, {"namespaces": [namespace_view(n) for n in found], "first": "/v2/metadefs/namespaces",
                    "schema": "/v2/schemas/metadefs/namespaces"})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)
        ns = self.metadefs.create(token, _new_namespace(token.project_id, body))
        send(resp, namespace_view(ns, full=True), 201)


class NamespaceItem:
    """GET, PUT and DELETE /image/v2/metadefs/namespaces/{namespace}."""

    def __init__(self, config: ApiConfig, metadefs: Metadefs):
        self.config = config
        self.metadefs = metadefs

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        send(resp, namespace_view(self.metadefs.get(token_of(req), namespace), full=True))

    def on_put(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)
        ns = self.metadefs.writable(token, namespace)
        if body["namespace"] != ns.id:
            raise Conflict(f"renaming namespace {cut(ns.id)} is not supported: send its name as namespace")
        changed = replace(ns, **{k: body[k] for k in _NAMESPACE_FIELDS if body.get(k) is not None},
                          project_id=body.get("owner") or ns.project_id)
        send(resp, namespace_view(self.metadefs.save(changed)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        self.metadefs.delete(token_of(req), namespace)
        resp.status = 204


@dataclass(frozen=True)
class Kind:
    """What a namespace holds of one kind: where it is kept, how its list and its items look."""

    field: str  # Namespace attribute
    list_key: str  # the list body's member
    what: str  # for messages

    def show(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        """One item as Glance shows it."""
        if self.field == "properties":
            return property_view(name, definition)
        return member_view(definition)

    def listing(self, members: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The list body (Glance's properties list is a map by name)."""
        if self.field == "properties":
            return {self.list_key: {n: property_view(n, d) for n, d in members.items()}}
        return {self.list_key: [member_view(d) for d in members.values()]}


OBJECTS = Kind("objects", "objects", "object")
PROPERTIES = Kind("properties", "properties", "property")
TAGS = Kind("tags", "tags", "tag")
ASSOCIATIONS = Kind("resource_type_associations", "resource_type_associations", "resource type association")


class NamespaceMembers:
    """GET and POST /image/v2/metadefs/namespaces/{namespace}/<kind>.

    POST to tags takes `{"tags": [{"name": …}, …]}` and replaces the namespace's tags, as Glance.
    """

    def __init__(self, config: ApiConfig, metadefs: Metadefs, kind: Kind):
        self.config = config
        self.metadefs = metadefs
        self.kind = kind

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        ns = self.metadefs.get(token_of(req), namespace)
        send(resp, {**self.kind.listing(_members(ns, self.kind.field)),
                    "schema": f"/v2/schemas/metadefs/{self.kind.list_key}"})

    def on_post(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)
        ns = self.metadefs.writable(token, namespace)
        members = _members(ns, self.kind.field)
        if self.kind is TAGS:
            names = [t["name"] for t in body["tags"]]
            if len(set(names)) != len(names):
                raise Conflict("tags: a name is given twice")
            self.metadefs.save(replace(ns, tags={t["name"]: stamped(_clean(t)) for t in body["tags"]}))
            send(resp, {"tags": [{"name": n} for n in names]}, 201)
            return
        name = body["name"]
        if self.kind is ASSOCIATIONS:
            _known_resource_type(name)
        if name in members:
            raise Conflict(f"A metadata definition {self.kind.what} with name={cut(name)} already exists in "
                           f"namespace={cut(ns.id)}.")
        members[name] = stamped(_clean(body))
        self.metadefs.save(replace(ns, **{self.kind.field: members}))
        send(resp, self.kind.show(name, members[name]), 201)



class ClearableMembers(NamespaceMembers):
    """Objects, properties and tags also have DELETE on their list: all of them go (not associations)."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str) -> None:
        ns = self.metadefs.writable(token_of(req), namespace)
        self.metadefs.save(replace(ns, **{self.kind.field: {}}))
        resp.status = 204


class NamespaceMember:
    """GET, PUT (may rename) and DELETE /image/v2/metadefs/namespaces/{namespace}/<kind>/{name}."""

    def __init__(self, config: ApiConfig, metadefs: Metadefs, kind: Kind):
        self.config = config
        self.metadefs = metadefs
        self.kind = kind

    def _find(self, ns: Namespace, name: str) -> dict[str, Any]:
        found = _members(ns, self.kind.field).get(name)
        if found is None:
            raise NotFound(f"Metadata definition {self.kind.what} not found: name={cut(name)} in "
                           f"namespace={cut(ns.id)}")
        return found

    def on_get(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        ns = self.metadefs.get(token_of(req), namespace)
        send(resp, self.kind.show(name, self._find(ns, name)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)
        ns = self.metadefs.writable(token, namespace)
        old = self._find(ns, name)
        new_name = body["name"]
        members = _members(ns, self.kind.field)
        if new_name != name and new_name in members:
            raise Conflict(f"A metadata definition {self.kind.what} with name={cut(new_name)} already exists "
                           f"in namespace={cut(ns.id)}.")
        # Renaming keeps the item's place in the namespace.
        members = {(new_name if n == name else n): (stamped(_clean(body), old["created"]) if n == name else d)
                   for n, d in members.items()}
        self.metadefs.save(replace(ns, **{self.kind.field: members}))
        send(resp, self.kind.show(new_name, members[new_name]))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        ns = self.metadefs.writable(token_of(req), namespace)
        self._find(ns, name)
        members = {n: d for n, d in _members(ns, self.kind.field).items() if n != name}
        self.metadefs.save(replace(ns, **{self.kind.field: members}))
        resp.status = 204


class TagItem(NamespaceMember):
    """A tag: GET, PUT, DELETE, and POST, which creates it by its name alone."""

    def __init__(self, config: ApiConfig, metadefs: Metadefs):
        super().__init__(config, metadefs, TAGS)

    def on_post(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        ns = self.metadefs.writable(token_of(req), namespace)
        members = _members(ns, self.kind.field)
        if name in members:
            raise Conflict(f"A metadata definition tag with name={cut(name)} already exists in "
                           f"namespace={cut(ns.id)}.")
        members[name] = stamped({"name": name})
        self.metadefs.save(replace(ns, tags=members))
        send(resp, member_view(members[name]), 201)


class AssociationItem:
    """DELETE /image/v2/metadefs/namespaces/{namespace}/resource_types/{name}."""

    def __init__(self, config: ApiConfig, metadefs: Metadefs):
        self.item = NamespaceMember(config, metadefs, ASSOCIATIONS)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, namespace: str, name: str) -> None:
        self.item.on_delete(req, resp, namespace, name)
