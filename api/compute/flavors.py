"""Nova's flavors: those of config.yaml and those an admin created (POST /flavors, stored in state.db);
lists with Nova's filters and pagination, one flavor; its extras (extra specs, access, description) are
api/compute/flavor_extras.py's."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import falcon

from api.change_counter import ChangeCounters, Slot
from api.compute.flavor_extras import DESCRIPTION, FlavorExtra, FlavorExtras
from api.compute.microversion import version_of
from api.compute.views import flavor_view
from api.auth import token_of
from api.config import ApiConfig, Flavor
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import read_json, send
from api.microversion import Version
from provisioner.excerpt import cut

QUERY = ("minDisk", "minRam", "limit", "marker", "is_public", "sort_key", "sort_dir")


def _number(req: falcon.Request, name: str) -> int | None:
    text = req.get_param(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise BadRequest(name, f"{cut(text)} is not a non-negative integer")
    return int(text)


MAX_AMOUNT = 2 ** 31 - 1  # Nova's bound on ram, vcpus, disk, ephemeral and swap


class FlavorCatalog:
    """The configured flavors, then those admins created (which may be deleted; configured ones may not).

    The whole list is kept per process while the shared flavors counter
    (api/change_counter.py) keeps its value: a create or delete bumps it after
    its commit, in whichever worker process, so no GET needs a SELECT until then.
    """

    def __init__(self, db: Database, configured: tuple[Flavor, ...], counters: ChangeCounters):
        self.db = db
        self.configured = configured
        self.created = Table(db, "flavors", Flavor)
        self.counters = counters
        self._cached: tuple[int, tuple[Flavor, ...]] | None = None  # (counter value when loaded, the list)

    def all(self) -> tuple[Flavor, ...]:
        """Every flavor, configured first."""
        changes = self.counters.value(Slot.FLAVORS)  # before the SELECT: a bump after it is seen next time
        cached = self._cached  # one read: another thread may replace it meanwhile
        if cached is not None and cached[0] == changes and not self.db.shared:
            return cached[1]
        flavors = self.load()
        self._cached = (changes, flavors)
        return flavors

    def load(self) -> tuple[Flavor, ...]:
        """Every flavor as stored now, not cached (for the checks inside a write transaction)."""
        return (*self.configured, *self.created.list())

    def changed(self) -> None:
        """Mark the created flavors changed (call after the change is committed): every process reloads."""
        self.counters.bump(Slot.FLAVORS)

    def get(self, flavor_id: str) -> Flavor | None:
        """The flavor with this id, or None."""
        return next((f for f in self.configured if f.id == flavor_id), None) or self.created.get(flavor_id)

    def find(self, flavor_id: str) -> Flavor:
        """The flavor with this id; NotFound as Nova words it."""
        flavor = self.get(flavor_id)
        if flavor is None:
            raise NotFound(f"Flavor {cut(flavor_id)} could not be found.")
        return flavor


def _amount(body: dict[str, Any], key: str, least: int, default: int | None = None) -> int:
    """A flavor size, an integer or its decimal text (the shape api/openapi.yaml checks): the text's value
    must be from `least` to MAX_AMOUNT as the integer's is."""
    value = int(body.get(key, default))
    if not least <= value <= MAX_AMOUNT:
        raise BadRequest(f"flavor.{key}", f"{value} is not an integer from {least} to {MAX_AMOUNT}")
    return value


def new_flavor(body: dict[str, Any]) -> Flavor:
    """The flavor a create body describes (Nova's fields, of the shape api/openapi.yaml checks; swap and
    rxtx_factor are accepted, not kept)."""
    flavor_id = body.get("id")
    flavor_id = str(uuid.uuid4()) if flavor_id in (None, "auto") else str(flavor_id)
    _amount(body, "swap", 0, 0)
    public = body.get("os-flavor-access:is_public", True)
    if isinstance(public, str):  # Nova's boolean text ('True', 'off', '1'...)
        public = public.lower() in ("true", "1", "on", "yes")
    return Flavor(id=flavor_id, name=body["name"], ram=_amount(body, "ram", 1), vcpus=_amount(body, "vcpus", 1),
                  disk=_amount(body, "disk", 0), ephemeral=_amount(body, "OS-FLV-EXT-DATA:ephemeral", 0, 0),
                  is_public=public)


def select(req: falcon.Request, flavors: tuple[Flavor, ...]) -> tuple[list[Flavor], str | None]:
    """The flavors minDisk/minRam/marker/limit select (in id order, as Nova's flavorid sort) and the marker of
    the next page when the page is cut."""
    min_disk, min_ram, limit = _number(req, "minDisk"), _number(req, "minRam"), _number(req, "limit")
    chosen = [f for f in flavors if (min_disk is None or f.disk >= min_disk) and (min_ram is None or f.ram >= min_ram)]
    public = (req.get_param("is_public") or "none").lower()  # every configured flavor unless asked
    if public in ("true", "1", "yes", "t", "y"):
        chosen = [f for f in chosen if f.is_public]
    elif public in ("false", "0", "no", "f", "n"):
        chosen = [f for f in chosen if not f.is_public]
    elif public != "none":
        raise BadRequest("is_public", f"{cut(public)}: use true, false or none")
    marker = req.get_param("marker")
    if marker is not None:
        index = next((i for i, f in enumerate(chosen) if f.id == marker), None)
        if index is None:
            raise BadRequest("marker", f"marker [{cut(marker)}] not found")
        chosen = chosen[index + 1:]
    if limit is not None and len(chosen) > limit:
        return chosen[:limit], (chosen[limit - 1].id if limit else None)
    return chosen, None


class FlavorList:
    """GET /compute/v2.1/flavors[/detail]: the flavors the caller may use (a private one when its project was
    given access; an admin sees every flavor)."""

    def __init__(self, config: ApiConfig, catalog: FlavorCatalog, extras: FlavorExtras, detail: bool):
        self.config = config
        self.catalog = catalog
        self.extras = extras
        self.detail = detail

    def _body(self, req: falcon.Request, flavors: list[Flavor], next_marker: str | None,
              extras: dict[str, FlavorExtra]) -> dict[str, Any]:
        version = version_of(req)
        views = [view(f, req.prefix, version, extras.get(f.id)) for f in flavors]
        if not self.detail:
            keep = ("id", "name", "links", "description") if version >= Version(2, 55) else ("id", "name", "links")
            views = [{k: v[k] for k in keep} for v in views]
        body: dict[str, Any] = {"flavors": views}
        if next_marker is not None:
            path = "flavors/detail" if self.detail else "flavors"
            kept = "&".join(f"{k}={v}" for k, v in req.params.items() if k in QUERY and k != "marker"
                            and isinstance(v, str) and v.isascii() and v.isalnum())
            body["flavors_links"] = [{"rel": "next", "href": f"{req.prefix}/compute/v2.1/{path}?"
                                                              f"{kept}&marker={next_marker}".replace("?&", "?")}]
        return body

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        extras = self.extras.all()
        usable = tuple(f for f in self.catalog.all() if self.extras.visible(token, f, extras))
        send(resp, self._body(req, *select(req, usable), extras))


def view(flavor: Flavor, base_url: str, version: Version, extra: FlavorExtra | None) -> dict[str, Any]:
    """The flavor's view with its extras."""
    return flavor_view(flavor, base_url, version, extra.description if extra else None,
                       extra.extra_specs if extra else None)


class Flavors(FlavorList):
    """GET /compute/v2.1/flavors; POST (an admin's)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.")
        body = read_json(req, self.config.max_json_body, "flavor")
        flavor = new_flavor(body)
        description = _description(body)
        with self.catalog.db.transaction():
            current = self.catalog.load()
            if any(f.id == flavor.id for f in current):
                raise Conflict(f"Flavor with ID {cut(flavor.id)} already exists.")
            if any(f.name == flavor.name for f in current):
                raise Conflict(f"Flavor with name {cut(flavor.name)} already exists.")
            self.catalog.created.insert(flavor)
            extra = FlavorExtra(flavor.id, description=description)
            self.extras.forget(flavor.id)  # a deleted flavor's id may come back: its old extras do not
            if description is not None:
                self.extras.save(extra)
        self.catalog.changed()
        send(resp, {"flavor": view(flavor, req.prefix, version_of(req), extra)})


def _description(body: dict[str, Any]) -> str | None:
    """A flavor's description (2.55 on; its type, length and version are api/openapi.yaml's): printable text,
    as Nova's pattern, or null."""
    description = body.get("description")
    if description is not None and not description.isprintable():
        raise BadRequest("flavor.description", "must be printable text")
    return description


class FlavorItem:
    """GET /compute/v2.1/flavors/{id} (by id only: clients find by name through the list); PUT its description
    (2.55, an admin's); DELETE (an admin's, of a created flavor: config.yaml's stay)."""

    def __init__(self, config: ApiConfig, catalog: FlavorCatalog, extras: FlavorExtras):
        self.config = config
        self.catalog = catalog
        self.extras = extras

    def find(self, req: falcon.Request, flavor_id: str) -> Flavor:
        """The flavor if the caller may see it (a private one without access is not found, as in Nova)."""
        flavor = self.catalog.find(flavor_id)
        if not self.extras.visible(token_of(req), flavor):
            raise NotFound(f"Flavor {cut(flavor_id)} could not be found.")
        return flavor

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        flavor = self.find(req, flavor_id)
        send(resp, {"flavor": view(flavor, req.prefix, version_of(req), self.extras.of(flavor.id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        if version_of(req) < DESCRIPTION:
            raise NotFound("Updating a flavor needs microversion 2.55 or later.")
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-flavor-manage:update to be performed.")
        body = read_json(req, self.config.max_json_body, "flavor")
        description = _description(body)
        flavor = self.find(req, flavor_id)
        with self.extras.db.transaction():
            extra = replace(self.extras.of(flavor.id), description=description)
            self.extras.save(extra)
        send(resp, {"flavor": view(flavor, req.prefix, version_of(req), extra)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed.")
        flavor = self.catalog.find(flavor_id)
        if self.catalog.created.get(flavor.id) is None:
            raise Conflict(f"Flavor {flavor.name} is defined in config.yaml: change it there")
        with self.catalog.db.transaction():
            self.catalog.created.delete(flavor.id)
            self.extras.forget(flavor.id)
        self.catalog.changed()
        resp.status = 202
