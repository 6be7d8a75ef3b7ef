"""Nova's volume proxies (os-volumes, os-snapshots): Cinder's volumes and snapshots in Nova's deprecated shape
(camelCase, displayName), created and deleted through this API's Cinder. Nova removed both at 2.36: a newer
request is a 404."""

from __future__ import annotations

import re
from typing import Any

import falcon

from api.auth import token_of
from api.compute.security_groups import proxied
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
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


class NovaVolumes:
    """GET /os-volumes[/detail] (the same view: Nova's summary and detail are alike), POST, and GET and
    DELETE /os-volumes/{id}."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, cinder: Volumes):
        self.config = config
        self.store = store
        self.worker = worker
        self.cinder = cinder

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        send(resp, {"volumes": [volume_view(v) for v in _page(req, self.store.volumes.list([token.project_id]))]})

    on_get_detail = on_get

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        body = read_json(req, self.config.max_json_body)["volume"]  # its form is api/openapi.yaml's
        size = body["size"]
        if int(size) < 1:  # a string of digits passes the schema, as in Nova; Cinder refuses 0
            raise BadRequest("volume.size", f"Invalid input received: size {size} must be an integer greater "
                                            "than 0")
        volume = self.cinder.create(token_of(req), _cinder_body(body), cinder_version.MIN)
        send(resp, {"volume": volume_view(volume)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        proxied(req)
        send(resp, {"volume": volume_view(self.store.volume(token_of(req), volume_id))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        proxied(req)
        volume = self.store.volume(token_of(req), volume_id)
        self.worker.delete(self.store.start_delete(volume))
        resp.status = 202


class NovaSnapshots:
    """GET /os-snapshots[/detail], POST, and GET and DELETE /os-snapshots/{id}."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, cinder: Snapshots):
        self.config = config
        self.store = store
        self.worker = worker
        self.cinder = cinder

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        token = token_of(req)
        found = _page(req, self.store.snapshots.list([token.project_id]))
        send(resp, {"snapshots": [snapshot_view(s) for s in found]})

    on_get_detail = on_get

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        proxied(req)
        body = read_json(req, self.config.max_json_body)["snapshot"]  # its form is api/openapi.yaml's
        snapshot = self.cinder.create(token_of(req), _cinder_body(body))
        send(resp, {"snapshot": snapshot_view(snapshot)})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        proxied(req)
        send(resp, {"snapshot": snapshot_view(self.store.snapshot(token_of(req), snapshot_id))})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        proxied(req)
        snapshot = self.store.snapshot(token_of(req), snapshot_id)
        self.worker.delete_snapshot(self.store.start_delete_snapshot(snapshot))
        resp.status = 202
