"""Nova's flavors (read from config.yaml): lists with Nova's filters and pagination, one flavor, and its
extra specs (none: the engine has no scheduler hints to attach)."""

from __future__ import annotations

import json
from typing import Any

import falcon

from api.compute.microversion import Version, version_of
from api.compute.views import flavor_view
from api.config import ApiConfig, Flavor
from api.errors import BadRequest, NotFound
from api.http import send, send_json_text
from provisioner.excerpt import cut

MAX_CACHED_BASES = 16  # unfiltered list bodies kept per resource, one per base URL and version
QUERY = ("minDisk", "minRam", "limit", "marker", "is_public", "sort_key", "sort_dir")


def _number(req: falcon.Request, name: str) -> int | None:
    text = req.get_param(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise BadRequest(name, f"{cut(text)} is not a non-negative integer")
    return int(text)


def find(config: ApiConfig, flavor_id: str) -> Flavor:
    """The configured flavor with this id; NotFound as Nova words it."""
    flavor = next((f for f in config.flavors if f.id == flavor_id), None)
    if flavor is None:
        raise NotFound(f"Flavor {cut(flavor_id)} could not be found.")
    return flavor


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


class Flavors:
    """GET /compute/v2.1/flavors[/detail]."""

    def __init__(self, config: ApiConfig, detail: bool):
        self.config = config
        self.detail = detail
        # Flavors are read at start: an unfiltered body only depends on the base URL and the version.
        self._bodies: dict[tuple[str, Version], str] = {}

    def _body(self, req: falcon.Request, flavors: list[Flavor], next_marker: str | None) -> dict[str, Any]:
        version = version_of(req)
        views = [flavor_view(f, req.prefix, version) for f in flavors]
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
        if any(k in req.params for k in QUERY):
            send(resp, self._body(req, *select(req, self.config.flavors)))
            return
        key = (req.prefix, version_of(req))
        body = self._bodies.get(key)
        if body is None:
            if len(self._bodies) >= MAX_CACHED_BASES:  # the Host header is the client's to choose
                self._bodies.clear()
            body = self._bodies[key] = json.dumps(self._body(req, list(self.config.flavors), None))
        send_json_text(resp, body)


class FlavorItem:
    """GET /compute/v2.1/flavors/{id} (by id only: clients find by name through the list)."""

    def __init__(self, config: ApiConfig):
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        send(resp, {"flavor": flavor_view(find(self.config, flavor_id), req.prefix, version_of(req))})


class FlavorExtraSpecs:
    """GET /compute/v2.1/flavors/{id}/os-extra_specs: always empty (the stock clients read it on flavor show)."""

    def __init__(self, config: ApiConfig):
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        find(self.config, flavor_id)
        send(resp, {"extra_specs": {}})


class FlavorExtraSpec:
    """GET /compute/v2.1/flavors/{id}/os-extra_specs/{key}: a 404, as Nova answers for a key not set."""

    def __init__(self, config: ApiConfig):
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str, key: str) -> None:
        flavor = find(self.config, flavor_id)
        raise NotFound(f"Flavor {flavor.id} has no extra specs with key {cut(key)}.")
