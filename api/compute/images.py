"""Nova's image API, a view of the Glance catalog (deprecated in Nova: up to microversion 2.35, then 404).

GET /images and /images/detail (filters name, status, server, type, changes-since, minDisk, minRam; limit
and marker), GET and DELETE /images/{id}, and the image's metadata (its Glance properties):
GET/POST/PUT /images/{id}/metadata and GET/PUT/DELETE /images/{id}/metadata/{key}. Tempest's compute
image tests wait for a server snapshot through these.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.server_meta import checked_metadata
from api.compute.views import link
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import isotime, read_json, send
from api.image.catalog import Image, ImageCatalog, ImageRow
from api.microversion import Version
from provisioner.excerpt import cut

LAST_VERSION = Version(2, 35)  # Nova removed its image proxy at 2.36
# Nova's own mapping of Glance statuses, and the progress it shows for each.
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "killed": "ERROR", "deactivated": "ERROR"}
PROGRESS = {"active": 100, "queued": 25, "saving": 50}
MAX_METADATA = 128  # Nova's metadata_items default


def _check_version(req: falcon.Request) -> None:
    if version_of(req) > LAST_VERSION:
        raise NotFound(f"the image API is not in microversion {version_of(req)} (it ends at 2.35)")


def nova_image(image: Image, base_url: str, detail: bool = True) -> dict[str, Any]:
    """An image as Nova's image API shows it."""
    row, record = image.row, image.record
    name = row.name if row else record.name
    links = [*link(base_url, "images", image.id),
             {"rel": "alternate", "type": "application/vnd.openstack.image",
              "href": f"{base_url}/image/v2/images/{image.id}"}]
    if not detail:
        return {"id": image.id, "name": name, "links": links}
    created = row.created if row else _epoch(record.imported_at)
    properties = dict(row.properties if row else record.properties)
    body: dict[str, Any] = {
        "id": image.id, "name": name, "status": STATUS.get(image.status, "UNKNOWN"),
        "progress": PROGRESS.get(image.status, 0), "minDisk": row.min_disk if row else 0,
        "minRam": row.min_ram if row else 0, "created": isotime(created),
        "updated": isotime(row.updated if row else created), "metadata": properties, "links": links,
        "OS-EXT-IMG-SIZE:size": record.size if record else 0,
    }
    server = properties.get("instance_uuid")
    if server:
        body["server"] = {"id": server, "links": link(base_url, "servers", server)}
    return body


def _epoch(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()
    except (TypeError, ValueError):
        return 0.0


def _int_param(req: falcon.Request, name: str) -> int | None:
    raw = req.get_param(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(name, f"{cut(raw)} is not a non-negative integer")
    return int(raw)


class NovaImages:
    """GET /compute/v2.1/images and /images/detail."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def _list(self, req: falcon.Request, detail: bool) -> list[dict[str, Any]]:
        _check_version(req)
        images = [i for i in self.catalog.visible(token_of(req)) if not (i.row and i.row.os_hidden)]
        views = [nova_image(i, req.prefix) for i in images]
        name, status, server, kind = (req.get_param(k) for k in ("name", "status", "server", "type"))
        since = req.get_param("changes-since")
        min_disk, min_ram, limit = (_int_param(req, k) for k in ("minDisk", "minRam", "limit"))
        if since is not None:
            try:
                since_epoch = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise BadRequest("changes-since", f"{cut(since)} is not an ISO 8601 time") from None
            views = [v for v in views if _epoch(v["updated"]) >= since_epoch]
        views = [v for v in views
                 if (name is None or v["name"] == name) and (status is None or v["status"] == status.upper())
                 and (server is None or v.get("server", {}).get("id") == server.rstrip("/").rsplit("/", 1)[-1])
                 and (kind is None or v["metadata"].get("image_type") == kind)
                 and (min_disk is None or v["minDisk"] >= min_disk) and (min_ram is None or v["minRam"] >= min_ram)]
        views.sort(key=lambda v: (v["created"], v["id"]), reverse=True)  # newest first, as Glance lists
        marker = req.get_param("marker")
        if marker is not None:
            ids = [v["id"] for v in views]
            if marker not in ids:
                raise BadRequest("marker", f"image {cut(marker)} is not in the list")
            views = views[ids.index(marker) + 1:]
        if limit is not None:
            views = views[:limit]
        if not detail:
            return [{"id": v["id"], "name": v["name"], "links": v["links"]} for v in views]
        return views

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"images": self._list(req, False)})

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"images": self._list(req, True)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """DELETE /images/ with a blank id: Nova's 404."""
        _check_version(req)
        raise NotFound("Image not found: no image id given")


class NovaImageItem:
    """GET and DELETE /compute/v2.1/images/{id}."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        _check_version(req)
        send(resp, {"image": nova_image(self.catalog.get(token_of(req), image_id), req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        _check_version(req)
        self.catalog.delete(token_of(req), image_id)
        resp.status = 204


class NovaImageMetadata:
    """GET, POST (merge) and PUT (replace) /compute/v2.1/images/{id}/metadata, and one key's
    GET, PUT and DELETE: the image's Glance properties."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def _properties(self, req: falcon.Request, image_id: str) -> dict[str, str]:
        _check_version(req)
        image = self.catalog.get(token_of(req), image_id)
        return dict(image.row.properties if image.row else image.record.properties)

    def _change(self, req: falcon.Request, image_id: str, properties: dict[str, str]) -> dict[str, str]:
        if len(properties) > MAX_METADATA:
            raise BadRequest("metadata", f"an image holds at most {MAX_METADATA} items")

        def change(row: ImageRow) -> ImageRow:
            return replace(row, properties=properties, updated=time.time())
        image = self.catalog.update(token_of(req), image_id, change)
        return dict(image.row.properties) if image.row else properties

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        send(resp, {"metadata": self._properties(req, image_id)})

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        current = self._properties(req, image_id)
        given = checked_metadata(read_json(req, self.config.max_json_body).get("metadata"), "metadata")
        send(resp, {"metadata": self._change(req, image_id, {**current, **given})})

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self._properties(req, image_id)
        given = checked_metadata(read_json(req, self.config.max_json_body).get("metadata"), "metadata")
        send(resp, {"metadata": self._change(req, image_id, given)})

    def on_get_key(self, req: falcon.Request, resp: falcon.Response, image_id: str, key: str) -> None:
        properties = self._properties(req, image_id)
        if key not in properties:
            raise NotFound(f"Metadata item {cut(key)} was not found")
        send(resp, {"meta": {key: properties[key]}})

    def on_put_key(self, req: falcon.Request, resp: falcon.Response, image_id: str, key: str) -> None:
        properties = self._properties(req, image_id)
        meta = checked_metadata(read_json(req, self.config.max_json_body).get("meta"), "meta")
        if list(meta) != [key]:
            raise BadRequest("meta", "must hold exactly one item, whose key is the URL's")
        send(resp, {"meta": {key: self._change(req, image_id, {**properties, **meta})[key]}})

    def on_delete_key(self, req: falcon.Request, resp: falcon.Response, image_id: str, key: str) -> None:
        properties = self._properties(req, image_id)
        if key not in properties:
            raise NotFound(f"Metadata item {cut(key)} was not found")
        del properties[key]
        self._change(req, image_id, properties)
        resp.status = 204
