"""What Nova keeps beside a flavor: its extra specs, the projects a private flavor is shared with
(os-flavor-access) and its description (2.55). One record per flavor, for configured and created flavors
alike; the engine reads no extra spec (there is no scheduler to hint), they are kept and shown as Nova does.

Bodies are structured by api/openapi.yaml (key and value forms, one key on a PUT); the semantic checks
(admin only, the URL's key, a public flavor's access list) are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig, Flavor
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from api.microversion import Version
from provisioner.excerpt import cut

DESCRIPTION = Version(2, 55)  # PUT /flavors/{id} and the description field
FindFlavor = Callable[[falcon.Request, str], Flavor]  # a flavor the caller may see, NotFound otherwise


@dataclass(frozen=True)
class FlavorExtra:
    """The extras of the flavor `id`."""

    id: str
    extra_specs: dict[str, str] = field(default_factory=dict)
    projects: tuple[str, ...] = ()  # who may use it while it is private
    description: str | None = None


class FlavorExtras:
    """The extras of every flavor, in state.db."""

    def __init__(self, db: Database):
        self.db = db
        self.table = Table(db, "flavor_extras", FlavorExtra)

    def of(self, flavor_id: str) -> FlavorExtra:
        """The flavor's extras (empty ones if it has none stored)."""
        return self.table.get(flavor_id) or FlavorExtra(flavor_id)

    def all(self) -> dict[str, FlavorExtra]:
        """Every stored record by flavor id."""
        return {e.id: e for e in self.table.list()}

    def save(self, extra: FlavorExtra) -> None:
        """Store `extra` (insert or replace); call inside a transaction that read it."""
        if self.table.get(extra.id) is None:
            self.table.insert(extra)
        else:
            self.table.update(extra)

    def forget(self, flavor_id: str) -> None:
        """Drop a deleted flavor's extras."""
        self.table.delete(flavor_id)

    def visible(self, token: Token, flavor: Flavor, extras: dict[str, FlavorExtra] | None = None) -> bool:
        """Whether the token may see and use `flavor`: public ones, a private one if its project has access;
        an admin every flavor."""
        if flavor.is_public or token.is_admin:
            return True
        extra = extras.get(flavor.id) if extras is not None else self.table.get(flavor.id)
        return extra is not None and token.project_id in extra.projects


def _admin(req: falcon.Request, rule: str) -> None:
    if not token_of(req).is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:{rule} to be performed.")


def _text(value: Any) -> str:
    """Nova stores every extra spec value as text (numbers and booleans as JSON writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ExtraSpecs:
    """GET and POST /compute/v2.1/flavors/{id}/os-extra_specs (POST merges, an admin's)."""

    def __init__(self, config: ApiConfig, find: FindFlavor, extras: FlavorExtras):
        self.config = config
        self.find = find
        self.extras = extras

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        send(resp, {"extra_specs": self.extras.of(self.find(req, flavor_id).id).extra_specs})

    def on_post(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        _admin(req, "os-flavor-extra-specs:create")
        specs = {k: _text(v) for k, v in read_json(req, self.config.max_json_body)["extra_specs"].items()}
        flavor = self.find(req, flavor_id)
        with self.extras.db.transaction():
            extra = self.extras.of(flavor.id)
            self.extras.save(replace(extra, extra_specs={**extra.extra_specs, **specs}))
        send(resp, {"extra_specs": specs})


class ExtraSpec:
    """GET, PUT and DELETE /compute/v2.1/flavors/{id}/os-extra_specs/{key}."""

    def __init__(self, config: ApiConfig, find: FindFlavor, extras: FlavorExtras):
        self.config = config
        self.find = find
        self.extras = extras

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        flavor = self.find(req, flavor_id)
        specs = self.extras.of(flavor.id).extra_specs
        if key not in specs:
            raise NotFound(f"Flavor {cut(flavor.id)} has no extra specs with key {cut(key)}.")
        send(resp, {key: specs[key]})

    def on_put(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        _admin(req, "os-flavor-extra-specs:update")
        body = read_json(req, self.config.max_json_body)  # one key (api/openapi.yaml)
        if key not in body:
            raise BadRequest("body", f"request body and URI mismatch: the URI names the key {cut(key)}")
        flavor = self.find(req, flavor_id)
        value = _text(body[key])
        with self.extras.db.transaction():
            extra = self.extras.of(flavor.id)
            self.extras.save(replace(extra, extra_specs={**extra.extra_specs, key: value}))
        send(resp, {key: value})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        _admin(req, "os-flavor-extra-specs:delete")
        flavor = self.find(req, flavor_id)
        with self.extras.db.transaction():
            extra = self.extras.of(flavor.id)
            if key not in extra.extra_specs:
                raise NotFound(f"Flavor {cut(flavor.id)} has no extra specs with key {cut(key)}.")
            self.extras.save(replace(extra, extra_specs={k: v for k, v in extra.extra_specs.items() if k != key}))
        resp.status = 200


def _access_list(flavor_id: str, extra: FlavorExtra) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in extra.projects]}


class FlavorAccess:
    """GET /compute/v2.1/flavors/{id}/os-flavor-access: the projects a private flavor is shared with."""

    def __init__(self, find: FindFlavor, extras: FlavorExtras):
        self.find = find
        self.extras = extras

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        _admin(req, "os-flavor-access")
        flavor = self.find(req, flavor_id)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        send(resp, _access_list(flavor.id, self.extras.of(flavor.id)))


class FlavorAction:
    """POST /compute/v2.1/flavors/{id}/action: addTenantAccess and removeTenantAccess (an admin's)."""

    def __init__(self, config: ApiConfig, find: FindFlavor, extras: FlavorExtras):
        self.config = config
        self.find = find
        self.extras = extras

    def on_post(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        body = read_json(req, self.config.max_json_body)  # one of the two actions (api/openapi.yaml)
        action, arguments = next(iter(body.items()))
        _admin(req, f"os-flavor-access:{'add' if action == 'addTenantAccess' else 'remove'}_tenant_access")
        flavor = self.find(req, flavor_id)
        project = arguments["tenant"]
        with self.extras.db.transaction():
            extra = self.extras.of(flavor.id)
            if action == "addTenantAccess":
                if flavor.is_public:
                    raise Conflict("Can not add access to a public flavor.")
                if project in extra.projects:
                    raise Conflict(f"Flavor access already exists for flavor {cut(flavor.id)} and project "
                                   f"{cut(project)} combination.")
                extra = replace(extra, projects=(*extra.projects, project))
            else:
                if project not in extra.projects:
                    raise NotFound(f"Flavor access not found for {cut(flavor.id)} / {cut(project)} combination.")
                extra = replace(extra, projects=tuple(p for p in extra.projects if p != project))
            self.extras.save(extra)
        send(resp, _access_list(flavor.id, extra))
