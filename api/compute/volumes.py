"""Nova's volume proxies (os-volumes, os-snapshots): Cinder's volumes and snapshots in Nova's deprecated shape
(camelCase, displayName), created and deleted through this API's Cinder. Nova removed both at 2.36: a newer
request is a 404."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import falcon

from api.auth import token_of
from api.compute.security_groups import proxied
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.identity.tokens import Token
from api.volume import microversion as cinder_version
from api.volume.models import Snapshot, Volume
from api.volume.resources import Snapshots, Volumes
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker


# The proxies' items addressed with an empty id (`os-volumes/`): Nova routes them as items, which do not exist.
_EMPTY_ID = re.compile(r"/compute/v2\.1/(os-volumes|os-snapshots)/")


class EmptyIdNotFound:
    """falcon middleware: 404 for GET or DELETE of `/compute/v2.1/os-volumes/` (the path as sent: the app strips
    the trailing slash before routing, which would reach the collection)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """falcon hook, before routing."""
        if req.method in ("GET", "DELETE"):
            match = _EMPTY_ID.fullmatch(req.env.get("PATH_INFO", ""))
            if match is not None:
                kind = "Volume" if match.group(1) == "os-volumes" else "Snapshot"
                raise NotFound(f"{kind} could not be found: the path has an empty id.")


def volume_view(volume: Volume) -> dict[str, Any]:
    """A volume as Nova's os-volumes shows it: one attachment summary, or `[{}]` when it has none (as Nova)."""
    attachment = ({"id": volume.id, "volumeId": volume.id, "serverId": volume.server_id, "device": volume.device}
                  if volume.attached else {})
    return {"id": volume.id, "status": volume.status, "size": volume.size,
            "availabilityZone": volume.availability_zone, "createdAt": isotime(volume.created, micro=True),
            "attachments": [attachment],
            "displayName": volume.name, "displayDescription": volume.description,
            "volumeType": volume.volume_type, "snapshotId": volume.snapshot_id, "metadata": volume.metadata}


def snapshot_view(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as Nova's os-snapshots shows it."""
    return {"id": snapshot.id, "volumeId": snapshot.volume_id, "status": snapshot.status, "size": snapshot.size,
            "createdAt": isotime(snapshot.created, micro=True), "displayName": snapshot.name,
            "displayDescription": snapshot.description}


def _page(req: falcon.Request, items: list[Any]) -> list[Any]:
    """Nova's `limited`: offset, then at most limit items (api/openapi.yaml: both non-negative integers)."""
    offset = req.get_param_as_int("offset", min_value=0, default=0) or 0
    limit = req.get_param_as_int("limit", min_value=0)
    ordered = sorted(items, key=lambda item: (item.created, item.id))
    return ordered[offset:] if limit is None else ordered[offset:offset + limit]


def _cinder_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Nova create body's volume or snapshot as Cinder's (display_name and display_description renamed)."""
    renamed = {"display_name": "name", "display_description": "description"}
    return {renamed.get(key, key): value for key, value in body.items()}


@dataclass(frozen=True)
class Proxied:
    """What one Nova proxy stands for in Cinder: its items' key, how they are listed, found, shown, created
    (from a create body in Cinder's names, its form checked by api/openapi.yaml) and deleted."""

    key: str  # "volume": the body's member; its plural names the listing
    listing: Callable[[list[str]], list[Any]]  # the items of these projects
    find: Callable[[Token, str], Any]  # one of the token's (NotFound otherwise)
    view: Callable[[Any], dict[str, Any]]
    create: Callable[[Token, dict[str, Any]], Any]
    delete: Callable[[Any], None]  # start deleting a found item


def volume_proxy(store: VolumeStore, worker: VolumeWorker, cinder: Volumes) -> Proxied:
    """os-volumes: Cinder's volumes, created at Cinder's minimum version."""

    def create(token: Token, body: dict[str, Any]) -> Volume:
        size = body["size"]
        if int(size) < 1:  # a string of digits passes the schema, as in Nova; Cinder refuses 0
            raise BadRequest("volume.size", f"Invalid input received: size {size} must be an integer greater "
                                            "than 0")
        return cinder.create(token, body, cinder_version.MIN)

    return Proxied("volume", store.volumes.list, store.volume, volume_view, create,
                   lambda volume: worker.delete(store.start_delete(volume)))


def snapshot_proxy(store: VolumeStore, worker: VolumeWorker, cinder: Snapshots) -> Proxied:
    """os-snapshots: Cinder's snapshots."""
    return Proxied("snapshot", store.snapshots.list, store.snapshot, snapshot_view, cinder.create,
                   lambda snapshot: worker.delete_snapshot(store.start_delete_snapshot(snapshot)))


class NovaProxy:
    """GET /os-volumes[/detail] (the same view: Nova's summary and detail are alike), POST, and GET and
    DELETE /os-volumes/{id}; the same for os-snapshots, by what it proxies."""

    def __init__(self, config: ApiConfig, proxied: Proxied):
        self.config = config
        self.proxied = proxied

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        found = _page(req, self.proxied.listing([token_of(req).project_id]))
        send(resp, {f"{self.proxied.key}s": [self.proxied.view(item) for item in found]})

    on_get_detail = on_get

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        body = read_json(req, self.config.max_json_body)[self.proxied.key]  # its form is api/openapi.yaml's
        created = self.proxied.create(token_of(req), _cinder_body(body))
        send(resp, {self.proxied.key: self.proxied.view(created)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        """GET /os-volumes/{volume_id} (/os-snapshots/{snapshot_id}: the one path parameter, by its name)."""
        proxied(req)
        (item_id,) = ids.values()
        send(resp, {self.proxied.key: self.proxied.view(self.proxied.find(token_of(req), item_id))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        """DELETE /os-volumes/{volume_id} (/os-snapshots/{snapshot_id}); 202, the delete goes on in Cinder."""
        proxied(req)
        (item_id,) = ids.values()
        self.proxied.delete(self.proxied.find(token_of(req), item_id))
        resp.status = 202
