"""Cinder volume types: `__DEFAULT__` always exists; admins create, update and delete others, with extra specs
and, for private types, the projects that may use them.

Every type maps to the same storage (the hypervisor's pool): a type names a
volume's class for its owner and its quotas, it does not change where the
volume lives. Extra specs are kept and shown, as Cinder does for a backend
that ignores them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from provisioner.excerpt import describe

DEFAULT_NAME = "__DEFAULT__"
DEFAULT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "provisioner:volume-type:__DEFAULT__"))


@dataclass(frozen=True)
class VolumeType:
    """A volume type; `projects` may use it when it is private (admins always may)."""

    id: str
    name: str
    project_id: str  # who created it (an admin's project)
    description: str | None = None
    is_public: bool = True
    extra_specs: dict[str, str] = field(default_factory=dict)
    projects: tuple[str, ...] = ()


DEFAULT_TYPE = VolumeType(id=DEFAULT_ID, name=DEFAULT_NAME, project_id="", description="Default Volume Type")


def type_view(vtype: VolumeType) -> dict[str, Any]:
    """A volume type as Cinder shows it."""
    return {"id": vtype.id, "name": vtype.name, "description": vtype.description, "is_public": vtype.is_public,
            "os-volume-type-access:is_public": vtype.is_public, "extra_specs": vtype.extra_specs}


class TypeStore:
    """The volume types, `__DEFAULT__` first."""

    def __init__(self, db: Database):
        self.types = Table(db, "volume_types", VolumeType)
        self._lock = threading.Lock()
        self.on_delete: list[Callable[[VolumeType], None]] = []  # what else a deleted type takes with it

    def visible(self, token: Token) -> list[VolumeType]:
        """The types a token may use: all for an admin, else the public ones and the private ones shared with
        its project."""
        return [t for t in [DEFAULT_TYPE, *self.types.list()] if self._may_use(token, t)]

    @staticmethod
    def _may_use(token: Token, vtype: VolumeType) -> bool:
        return token.is_admin or vtype.is_public or token.project_id in vtype.projects

    def get(self, token: Token, key: str) -> VolumeType:
        """A type by id, or by name (volume create accepts either); NotFound if the token may not use it."""
        found = DEFAULT_TYPE if key in (DEFAULT_ID, DEFAULT_NAME) else self.types.get(key)
        if found is None:
            found = next(iter(self.types.list(name=key)), None)
        if found is None or not self._may_use(token, found):
            raise NotFound(f"Volume type {describe(key)} could not be found.")
        return found

    def add(self, vtype: VolumeType) -> VolumeType:
        """Record a new type; Conflict if the name is taken."""
        with self._lock:
            if vtype.name == DEFAULT_NAME or self.types.list(name=vtype.name):
                raise Conflict(f"Volume Type {describe(vtype.name)} already exists.")
            return self.types.insert(vtype)

    def change(self, vtype: VolumeType, **changes: Any) -> VolumeType:
        """Update a stored type (the default type is not stored: it cannot change); Conflict on a taken name."""
        if vtype.id == DEFAULT_ID:
            raise BadRequest("volume_type", f"the default type {DEFAULT_NAME} cannot be changed")
        with self._lock:
            name = changes.get("name")
            if name is not None and name != vtype.name and (name == DEFAULT_NAME or self.types.list(name=name)):
                raise Conflict(f"Volume Type {describe(name)} already exists.")
            current = self.types.get(vtype.id) or vtype
            return self.types.update(replace(current, **changes))

    def delete(self, vtype: VolumeType) -> None:
        """Forget a type; the default type cannot go."""
        if vtype.id == DEFAULT_ID:
            raise BadRequest("volume_type", f"the default type {DEFAULT_NAME} cannot be deleted")
        self.types.delete(vtype.id)
        for forget in self.on_delete:
            forget(vtype)


def boolish(value: bool | str) -> bool:
    """A boolean, or its text in any case (api/openapi.yaml's Boolish)."""
    return value if isinstance(value, bool) else value.lower() == "true"


def stored_specs(specs: dict[str, Any]) -> dict[str, str]:
    """Extra specs (api/openapi.yaml's ExtraSpecs) as stored: numbers and booleans as text."""
    return {key: value if isinstance(value, str) else str(value) for key, value in specs.items()}


def type_changes(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """The changes a volume or group type update (`kind`: its body key) asks for; BadRequest if none."""
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        changes["name"] = body["name"]
    if "description" in body:
        changes["description"] = body["description"]
    if body.get("is_public") is not None:
        changes["is_public"] = boolish(body["is_public"])
    if not changes:
        raise BadRequest(kind, "give at least one of name, description and is_public")
    return changes


class Types:
    """GET /volume/v3/types (the types a token may use), POST (admin)."""

    def __init__(self, config: ApiConfig, store: TypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        types = self.store.visible(token)
        # Cinder: an admin sees the public types unless is_public says false (private only) or none (all);
        # others see the public ones and the private ones shared with their project.
        wanted = (req.get_param("is_public") or "true").lower()
        if token.is_admin and wanted != "none":
            public = wanted in ("true", "1", "yes", "on", "t", "y")
            types = [t for t in types if t.is_public == public]
        send(resp, {"volume_types": [type_view(t) for t in types]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        require_admin(token, "creating a volume type")
        body = read_json(req, self.config.max_json_body)["volume_type"]  # of api/openapi.yaml's form
        public = body.get("os-volume-type-access:is_public")
        vtype = VolumeType(id=str(uuid.uuid4()), name=body["name"], project_id=token.project_id,
                           description=body.get("description"),
                           is_public=True if public is None else boolish(public),
                           extra_specs=stored_specs(body.get("extra_specs") or {}))
        send(resp, {"volume_type": type_view(self.store.add(vtype))})


class TypeItem:
    """GET, PUT (admin: name, description, is_public) and DELETE (admin, 202) /volume/v3/types/{type_id}."""

    def __init__(self, config: ApiConfig, store: TypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        if type_id == "default":  # Cinder's alias for the default type
            type_id = DEFAULT_ID
        send(resp, {"volume_type": type_view(self.store.get(token, type_id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        require_admin(token, "updating a volume type")
        vtype = self.store.get(token, type_id)
        body = read_json(req, self.config.max_json_body)["volume_type"]  # of api/openapi.yaml's form
        updated = type_view(self.store.change(vtype, **type_changes(body, "volume_type")))
        del updated["os-volume-type-access:is_public"]  # Cinder's update view leaves it out
        send(resp, {"volume_type": updated})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        require_admin(token, "deleting a volume type")
        self.store.delete(self.store.get(token, type_id))
        resp.status = 202


class ExtraSpecs:
    """GET and POST (admin: add or replace keys) /volume/v3/types/{type_id}/extra_specs."""

    def __init__(self, config: ApiConfig, store: TypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        send(resp, {"extra_specs": self.store.get(token_of(req), type_id).extra_specs})

    def on_post(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        require_admin(token, "setting extra specs")
        vtype = self.store.get(token, type_id)
        specs = stored_specs(read_json(req, self.config.max_json_body)["extra_specs"])
        updated = self.store.change(vtype, extra_specs={**vtype.extra_specs, **specs})
        send(resp, {"extra_specs": {k: updated.extra_specs[k] for k in specs}})


class ExtraSpec:
    """GET, PUT (admin, one key) and DELETE (admin) /volume/v3/types/{type_id}/extra_specs/{key}."""

    def __init__(self, config: ApiConfig, store: TypeStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        specs = self.store.get(token_of(req), type_id).extra_specs
        if key not in specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {describe(key)}.")
        send(resp, {key: specs[key]})

    def on_put(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        token = token_of(req)
        require_admin(token, "setting extra specs")
        vtype = self.store.get(token, type_id)
        body = stored_specs(read_json(req, self.config.max_json_body))  # one spec, per api/openapi.yaml
        if list(body) != [key]:
            raise BadRequest("body", "must have exactly one key, the one in the URL")
        self.store.change(vtype, extra_specs={**vtype.extra_specs, **body})
        send(resp, body)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, type_id: str, key: str) -> None:
        token = token_of(req)
        require_admin(token, "deleting extra specs")
        vtype = self.store.get(token, type_id)
        if key not in vtype.extra_specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {describe(key)}.")
        self.store.change(vtype, extra_specs={k: v for k, v in vtype.extra_specs.items() if k != key})
        resp.status = 202


class TypeAccess:
    """GET /volume/v3/types/{type_id}/os-volume-type-access (admin): the projects a private type is shared with."""

    def __init__(self, store: TypeStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        require_admin(token, "listing a volume type's access")
        vtype = self.store.get(token, type_id)
        if vtype.is_public:
            raise NotFound(f"Volume type {type_id} is public: access applies to private types only.")
        send(resp, {"volume_type_access": [{"volume_type_id": vtype.id, "project_id": p} for p in vtype.projects]})


class TypeActions:
    """POST /volume/v3/types/{type_id}/action (admin): addProjectAccess, removeProjectAccess (202)."""

    def __init__(self, config: ApiConfig, store: TypeStore):
        self.config = config
        self.store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response, type_id: str) -> None:
        token = token_of(req)
        require_admin(token, "changing a volume type's access")
        vtype = self.store.get(token, type_id)
        # One of the two actions, with a project (api/openapi.yaml).
        action, args = next(iter(read_json(req, self.config.max_json_body).items()))
        project = args["project"]
        if vtype.is_public:
            raise BadRequest(action, "access applies to private types only")
        if action == "addProjectAccess":
            if project in vtype.projects:
                raise Conflict(f"Volume type access for {type_id}/{describe(project)} already exists.")
            self.store.change(vtype, projects=(*vtype.projects, project))
        else:
            if project not in vtype.projects:
                raise NotFound(f"Volume type access not found for {type_id}/{describe(project)}.")
            self.store.change(vtype, projects=tuple(p for p in vtype.projects if p != project))
        resp.status = 202
