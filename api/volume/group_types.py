"""Cinder's group types (microversion 3.11; a 404 before, as in Cinder): admins create, update and delete them,
with group specs; everyone lists and shows the public ones.

Like volume types, a group type names a class of group for its owner; every
group would live on the one backend (api/volume/backend.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from api.volume import listing, microversion
from api.volume.types import boolish, stored_specs, type_changes
from provisioner.excerpt import describe


@dataclass(frozen=True)
class GroupType:
    """A group type; a private one is seen by admins only (no access list: Cinder's group type access is
    admin-only too)."""

    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    project_id: str = ""  # the Table's scope column: types belong to no project


def group_type_view(gtype: GroupType) -> dict[str, Any]:
    """A group type as Cinder shows it."""
    return {"id": gtype.id, "name": gtype.name, "description": gtype.description, "is_public": gtype.is_public,
            "group_specs": gtype.group_specs}


def _require_version(req: falcon.Request) -> None:
    if microversion.version_of(req) < microversion.GROUP_TYPES:
        raise NotFound(f"The resource could not be found (group types need microversion "
                       f"{microversion.GROUP_TYPES}).")


class GroupTypeStore:
    """The group types (table api_volume_group_types)."""

    def __init__(self, db: Database):
        self.types = Table(db, "volume_group_types", GroupType)
        self._lock = threading.Lock()

    def get(self, token: Token, type_id: str) -> GroupType:
        """A group type the token may see; NotFound otherwise."""
        found = self.types.get(type_id)
        if found is None or not (found.is_public or token.is_admin):
            raise NotFound(f"Group type {describe(type_id)} could not be found.")
        return found

    def add(self, gtype: GroupType) -> GroupType:
        """Record a new type; Conflict if the name is taken."""
        with self._lock:
            if self.types.list(name=gtype.name):
                raise Conflict(f"Group Type {describe(gtype.name)} already exists.")
            return self.types.insert(gtype)

    def change(self, gtype: GroupType, **changes: Any) -> GroupType:
        """Update a stored type; Conflict on a taken name."""
        with self._lock:
            name = changes.get("name")
            if name is not None and name != gtype.name and self.types.list(name=name):
                raise Conflict(f"Group Type {describe(name)} already exists.")
            current = self.types.get(gtype.id) or gtype
            return self.types.update(replace(current, **changes))


class GroupTypes:
    """GET /volume/v3/group_types (sort, is_public: true by default, false, or None for all; admins), POST
    (admin, 202)."""

    def __init__(self, config: ApiConfig, store: GroupTypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req)
        token = token_of(req)
        types = [t for t in self.store.types.list() if t.is_public or token.is_admin]
        wanted = (req.get_param("is_public") or "true").lower()
        if token.is_admin and wanted != "none":
            public = wanted in ("true", "1", "yes", "on", "t", "y")
            types = [t for t in types if t.is_public == public]
        send(resp, {"group_types": [group_type_view(t) for t in listing.page(req, types).items]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req)
        require_admin(token_of(req), "creating a group type")
        body = read_json(req, self.config.max_json_body)["group_type"]  # of api/openapi.yaml's form
        public = body.get("is_public")
        gtype = GroupType(id=str(uuid.uuid4()), name=body["name"].strip(), description=body.get("description"),
                          is_public=True if public is None else boolish(public),
                          group_specs=stored_specs(body.get("group_specs") or {}), created=time.time())
        if not gtype.name:
            raise BadRequest("group_type.name", "must not be blank")
        send(resp, {"group_type": group_type_view(self.store.add(gtype))}, 202)


class GroupTypeItem:
    """GET, PUT (admin: name, description, is_public) and DELETE (admin, 202) /volume/v3/group_types/{id}."""

    def __init__(self, config: ApiConfig, store: GroupTypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_type_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        if group_type_id == "default":
            raise NotFound("Default group type could not be found: none is configured.")
        send(resp, {"group_type": group_type_view(self.store.get(token, group_type_id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, group_type_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        require_admin(token, "updating a group type")
        gtype = self.store.get(token, group_type_id)
        body = read_json(req, self.config.max_json_body)["group_type"]  # of api/openapi.yaml's form
        send(resp, {"group_type": group_type_view(self.store.change(gtype, **type_changes(body, "group_type")))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_type_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        require_admin(token, "deleting a group type")
        self.store.types.delete(self.store.get(token, group_type_id).id)
        resp.status = 202


class GroupSpecs:
    """GET and POST (admin, 202: add or replace keys) /volume/v3/group_types/{id}/group_specs."""

    def __init__(self, config: ApiConfig, store: GroupTypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_type_id: str) -> None:
        _require_version(req)
        send(resp, {"group_specs": self.store.get(token_of(req), group_type_id).group_specs})

    def on_post(self, req: falcon.Request, resp: falcon.Response, group_type_id: str) -> None:
        _require_version(req)
        token = token_of(req)
        require_admin(token, "setting group specs")
        gtype = self.store.get(token, group_type_id)
        specs = stored_specs(read_json(req, self.config.max_json_body)["group_specs"])
        self.store.change(gtype, group_specs={**gtype.group_specs, **specs})
        send(resp, {"group_specs": specs}, 202)


class GroupSpec:
    """GET, PUT (admin, one key) and DELETE (admin, 202) /volume/v3/group_types/{id}/group_specs/{key}."""

    def __init__(self, config: ApiConfig, store: GroupTypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, group_type_id: str, key: str) -> None:
        _require_version(req)
        specs = self.store.get(token_of(req), group_type_id).group_specs
        if key not in specs:
            raise NotFound(f"Group type {group_type_id} has no group spec {describe(key)}.")
        send(resp, {key: specs[key]})

    def on_put(self, req: falcon.Request, resp: falcon.Response, group_type_id: str, key: str) -> None:
        _require_version(req)
        token = token_of(req)
        require_admin(token, "setting group specs")
        gtype = self.store.get(token, group_type_id)
        body = stored_specs(read_json(req, self.config.max_json_body))  # one spec, per api/openapi.yaml
        if list(body) != [key]:
            raise BadRequest("body", "must have exactly one key, the one in the URL")
        self.store.change(gtype, group_specs={**gtype.group_specs, **body})
        send(resp, body)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, group_type_id: str, key: str) -> None:
        _require_version(req)
        token = token_of(req)
        require_admin(token, "deleting group specs")
        gtype = self.store.get(token, group_type_id)
        if key not in gtype.group_specs:
            raise NotFound(f"Group type {group_type_id} has no group spec {describe(key)}.")
        self.store.change(gtype, group_specs={k: v for k, v in gtype.group_specs.items() if k != key})
        resp.status = 202
