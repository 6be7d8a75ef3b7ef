"""Cinder v3 request handling: volumes and snapshots."""

from __future__ import annotations

import time
import uuid
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest
from api.http import field, read_json, send
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume.models import Snapshot, Volume
from api.volume.store import VolumeStore
from api.volume.views import snapshot_view, volume_view
from api.volume.worker import VolumeWorker
from provisioner.excerpt import describe

VERSION = "3.0"  # no microversions: simpler bodies, and the stock clients accept it
# Ways to fill a new volume that are not supported yet: a non-null value is refused, not ignored.
UNSUPPORTED_SOURCES = ("snapshot_id", "source_volid", "imageRef", "backup_id", "consistencygroup_id", "group_id")
MAX_NAME = 255


def version_document(base_url: str) -> dict[str, Any]:
    """Cinder's v3 version entry."""
    return {"id": "v3.0", "status": "CURRENT", "version": VERSION, "min_version": "3.0",
            "updated": "2023-05-25T00:00:00Z", "links": [{"rel": "self", "href": f"{base_url}/volume/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


def _common(body: dict[str, Any], where: str) -> dict[str, Any]:
    """name, description and metadata, checked."""
    name = field(body, "name", str, where, False, "")
    if len(name) > MAX_NAME:
        raise BadRequest(f"{where}.name", f"is longer than {MAX_NAME} characters")
    metadata = field(body, "metadata", dict, where, False, {})
    bad = next((k for k, v in metadata.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise BadRequest(f"{where}.metadata", f"value of {describe(bad)} is not a string")
    return {"name": name, "description": field(body, "description", str, where, False, ""),
            "metadata": metadata}


def _size(body: dict[str, Any], largest: int) -> int:
    """Cinder's `size` in GiB: a positive integer (or a string of one), at most `largest`."""
    size = field(body, "size", (int, str), "volume")
    if isinstance(size, bool):
        raise BadRequest("volume.size", f"{describe(size)} is not a whole number of GiB")
    if isinstance(size, str):
        if not size.strip().isdigit():
            raise BadRequest("volume.size", f"{describe(size)} is not a whole number of GiB")
        size = int(size)
    if size < 1:
        raise BadRequest("volume.size", f"{size} GiB: must be at least 1")
    if size > largest:
        raise BadRequest("volume.size", f"{size} GiB: larger than max_volume_size ({largest} GiB) in the API's "
                                        "config.yaml")
    return size


def _filtered(req: falcon.Request, items: list[Any]) -> list[Any]:
    """Cinder's exact-match `name` and `status` filters (and `volume_id` for snapshots)."""
    for key in ("name", "status", "volume_id"):
        wanted = req.get_param(key)
        if wanted is not None:
            items = [i for i in items if getattr(i, key, None) == wanted]
    return items


def _all_projects(req: falcon.Request) -> bool:
    return req.get_param_as_bool("all_tenants", default=False) or False


class Volumes:
    """GET /volume/v3/volumes[/detail], POST (202, creating → available or error; quotas volumes, gigabytes,
    per_volume_gigabytes)."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.worker = worker
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        token = token_of(req)
        volumes = _filtered(req, self.store.volumes.list(self.store.scope(token, _all_projects(req))))
        if detail:
            views = [volume_view(v, req.prefix) for v in volumes]
        else:
            views = [{k: volume_view(v, req.prefix)[k] for k in ("id", "name", "links")} for v in volumes]
        send(resp, {"volumes": views})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body, "volume")
        for key in UNSUPPORTED_SOURCES:
            if body.get(key) is not None:
                raise BadRequest(f"volume.{key}", "creating a volume from it is not supported yet: "
                                                  "volumes are created blank")
        if field(body, "multiattach", bool, "volume", False, False):
            raise BadRequest("volume.multiattach", "multiattach volumes are not supported")
        for key, allowed in (("volume_type", "__DEFAULT__"), ("availability_zone", "nova")):
            value = body.get(key)
            if value is not None and value != allowed:
                raise BadRequest(f"volume.{key}", f"{describe(value)} does not exist (there is only {allowed!r})")
        now = time.time()
        volume = Volume(id=str(uuid.uuid4()), project_id=token.project_id, user_id=token.user_id,
                        size=_size(body, self.config.max_volume_size),
                        created=now, updated=now, **_common(body, "volume"))
        self.quotas.check_each(VOLUME, volume.project_id, {"per_volume_gigabytes": volume.size})
        with self.store.db.transaction():  # count and insert at once: no two creates take the last unit
            self.quotas.check(VOLUME, volume.project_id, {"volumes": 1, "gigabytes": volume.size})
            self.store.volumes.insert(volume)
        self.worker.create(volume)
        send(resp, {"volume": volume_view(volume, req.prefix)}, 202)


class VolumeItem:
    """GET and DELETE /volume/v3/volumes/{id}."""

    def __init__(self, store: VolumeStore, worker: VolumeWorker):
        self.store = store
        self.worker = worker

    def on_get(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        send(resp, {"volume": volume_view(self.store.volume(token_of(req), volume_id), req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        volume = self.store.volume(token_of(req), volume_id)
        if req.get_param_as_bool("cascade", default=False):
            raise BadRequest("cascade", "deleting a volume with its snapshots is not supported yet: "
                                        "delete the snapshots first")
        self.worker.delete(self.store.start_delete(volume))
        resp.status = 202


class Snapshots:
    """GET /volume/v3/snapshots[/detail], POST (202, creating → available or error; quotas snapshots,
    gigabytes)."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.worker = worker
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        token = token_of(req)
        snapshots = _filtered(req, self.store.snapshots.list(self.store.scope(token, _all_projects(req))))
        views = [snapshot_view(s) for s in snapshots]
        if not detail:
            views = [{k: v[k] for k in ("id", "name", "status", "size", "volume_id")} for v in views]
        send(resp, {"snapshots": views})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body, "snapshot")
        field(body, "force", (bool, str), "snapshot", False)  # in-use volumes are copied as they are
        volume = self.store.volume(token, field(body, "volume_id", str, "snapshot"))
        now = time.time()
        snapshot = self.store.add_snapshot(Snapshot(
            id=str(uuid.uuid4()), project_id=token.project_id, user_id=token.user_id, volume_id=volume.id,
            size=volume.size, created=now, updated=now, **_common(body, "snapshot")),
            self.quotas.admission(VOLUME, {"snapshots": 1, "gigabytes": volume.size}))
        self.worker.snapshot(snapshot)
        send(resp, {"snapshot": snapshot_view(snapshot)}, 202)


class SnapshotItem:
    """GET and DELETE /volume/v3/snapshots/{id}."""

    def __init__(self, store: VolumeStore, worker: VolumeWorker):
        self.store = store
        self.worker = worker

    def on_get(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        send(resp, {"snapshot": snapshot_view(self.store.snapshot(token_of(req), snapshot_id))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        snapshot = self.store.snapshot(token_of(req), snapshot_id)
        self.worker.delete_snapshot(self.store.start_delete_snapshot(snapshot))
        resp.status = 202

