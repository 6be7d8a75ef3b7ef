"""Glance v2 request handling."""

from __future__ import annotations

import inspect
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, TooLarge
from api.http import read_json, send
from api.image.catalog import ImageCatalog
from api.image.views import CORE, image_view
from provisioner.excerpt import describe
from provisioner.images import ImageStore
from provisioner.images.records import VISIBILITIES

FILTERS = ("id", "name", "status", "visibility", "owner", "disk_format", "container_format")
# Create-request keys that are not free-form properties.
CREATE_KEYS = {"name": str, "id": str, "visibility": str, "disk_format": str, "container_format": str,
               "tags": list, "min_disk": int, "min_ram": int, "protected": bool}
DISK_FORMATS = ("qcow2", "raw")
# Not free-form properties: Glance's own read-only fields, and the store's import arguments
# (properties are passed to ImageStore.import_stream as keywords, so they must not collide).
RESERVED = (set(CORE) | set(inspect.signature(ImageStore.import_stream).parameters)) - set(CREATE_KEYS)


def version_list(base_url: str) -> dict[str, Any]:
    """Glance's versions document (v2 only)."""
    return {"versions": [{"id": "v2.16", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"{base_url}/image/v2/"}]}]}


def _matches(view: dict[str, Any], key: str, wanted: str) -> bool:
    values = wanted[3:].split(",") if wanted.startswith("in:") else [wanted]
    return str(view.get(key)) in [v.strip().strip('"') for v in values]


def _create_body(data: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"properties": {}}
    for key, value in data.items():
        kind = CREATE_KEYS.get(key)
        if kind is None:
            if key in RESERVED:
                raise BadRequest(key, "is reserved: it cannot be set as an image property")
            if not isinstance(value, str):
                raise BadRequest(describe(key), f"{describe(value)}: extra properties must be strings")
            body["properties"][key] = value
        elif value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise BadRequest(key, f"{describe(value)} is not a {kind.__name__}")
        else:
            body[key] = value
    if not body.get("name"):
        raise BadRequest("name", "is required")
    if body.get("visibility") not in (None, *VISIBILITIES):
        raise BadRequest("visibility", f"{describe(body['visibility'])}: use one of {', '.join(VISIBILITIES)}")
    if body.get("disk_format") not in (None, *DISK_FORMATS):
        raise BadRequest("disk_format", f"{describe(body['disk_format'])}: supported are {', '.join(DISK_FORMATS)}")
    if body.get("container_format") not in (None, "bare"):
        raise BadRequest("container_format", f"{describe(body['container_format'])}: only 'bare' is supported")
    return body


class Images:
    """GET /image/v2/images (filters: id, name, … with `in:`), POST."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = [image_view(i) for i in self.catalog.visible(token_of(req))]
        for key in FILTERS:
            wanted = req.get_param(key)
            if wanted is not None:
                views = [v for v in views if _matches(v, key, wanted)]
        send(resp, {"images": views, "schema": "/v2/schemas/images", "first": "/v2/images"})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _create_body(read_json(req, self.config.max_json_body))
        image = self.catalog.create(token_of(req), body)
        resp.set_header("Location", f"{req.prefix}/image/v2/images/{image.id}")
        send(resp, image_view(image), 201)


class ImageItem:
    """GET and DELETE /image/v2/images/{id}."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        send(resp, image_view(self.catalog.get(token_of(req), image_id)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.catalog.delete(token_of(req), image_id)
        resp.status = 204


class ImageFile:
    """PUT /image/v2/images/{id}/file: the data, streamed into the store; GET streams it back."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        if req.content_length is not None and req.content_length > self.config.max_image_body:
            raise TooLarge(f"image data of {req.content_length} bytes exceeds the limit of "
                           f"{self.config.max_image_body}")
        self.catalog.upload(token_of(req), image_id, req.bounded_stream, req.content_length)
        resp.status = 204

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        record = self.catalog.record(token_of(req), image_id)
        resp.content_type = "application/octet-stream"
        if record.md5:
            resp.set_header("Content-MD5", record.md5)
        resp.set_stream(open(record.path, "rb"), record.size)
