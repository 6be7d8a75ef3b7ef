"""Glance's interoperable image import: the methods on offer, staging, and the import call.

One method is offered, `glance-direct` (stage the data, then import it). Not offered:
`web-download` and `glance-download` (the API never fetches from the network: a
deployment lists what it allows, and Tempest reads the list from /v2/info/import),
and `copy-image` (one store). Like a single-store Glance, /v2/info/stores answers 404.
"""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, NotFound
from api.http import read_json, send
from api.image.catalog import ImageCatalog
from api.image.resources import refuse_oversized_data
from provisioner.excerpt import describe

IMPORT_METHODS = ("glance-direct",)


def import_info() -> dict[str, Any]:
    """GET /v2/info/import's body, as Glance words it."""
    return {"import-methods": {"description": "Import methods available.", "type": "array",
                               "value": list(IMPORT_METHODS)}}


class ImportInfo:
    """GET /image/v2/info/import."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token_of(req)
        send(resp, import_info())


class StoresInfo:
    """GET /image/v2/info/stores: 404, as a Glance with one store (no enabled_backends) answers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token_of(req)
        raise NotFound("Multi backend is not supported at this site: images live in one store")


class ImageStage:
    """PUT /image/v2/images/{id}/stage: the data of a queued image, kept until it is imported."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        refuse_oversized_data(req, self.config)
        self.catalog.stage(token_of(req), image_id, req.bounded_stream, req.content_length)
        resp.status = 204


class ImageImport:
    """POST /image/v2/images/{id}/import: `{"method": {"name": "glance-direct"}}` (202)."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body)
        method = body["method"]["name"]
        if method not in IMPORT_METHODS:
            raise BadRequest("method.name", f"import method {describe(method)} is not available at this site: "
                                            f"use {', '.join(IMPORT_METHODS)}")
        if body.get("stores"):  # all_stores is the one store: either value does the same
            raise BadRequest("stores", "this site has one store: import without naming stores")
        image = self.catalog.import_staged(token, image_id)
        self.catalog.tasks.record(image.id, image.owner, token.user_id, req.context.request_id, "success", body)
        resp.status = 202
