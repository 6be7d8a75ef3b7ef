"""Glance v2 request handling."""

from __future__ import annotations

import inspect
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, NotFound, TooLarge
from api.http import read_json, send
from api.identity.tokens import Token
from api.image.catalog import QUEUED, UPLOADING, ImageCatalog
from api.image.members import ACCEPTED, STATUSES
from api.image.patch import MAX_PROPERTY, apply_patch, check_property, read_patch, typed_attribute
from api.image.views import CORE, image_view
from provisioner.excerpt import cut, describe
from provisioner.images import ImageStore

FILTERS = ("id", "name", "status", "visibility", "owner", "disk_format", "container_format")
# Create-request keys that are not free-form properties (their form is api/openapi.yaml's).
CREATE_KEYS = ("name", "id", "visibility", "disk_format", "container_format", "tags", "min_disk", "min_ram",
               "protected", "os_hidden")
# Not free-form properties: Glance's own read-only fields, and the store's import arguments
# (properties are passed to ImageStore.import_stream as keywords, so they must not collide).
RESERVED = frozenset((set(CORE) | set(inspect.signature(ImageStore.import_stream).parameters)) - set(CREATE_KEYS))


def version_list(base_url: str) -> dict[str, Any]:
    """Glance's versions document (v2 only)."""
    return {"versions": [{"id": "v2.16", "status": "CURRENT",
                          "links": [{"rel": "self", "href": f"{base_url}/image/v2/"}]}]}


def _matches(view: dict[str, Any], key: str, wanted: str) -> bool:
    values = wanted[3:].split(",") if wanted.startswith("in:") else [wanted]
    return str(view.get(key)) in [v.strip().strip('"') for v in values]


def _create_body(data: dict[str, Any], is_admin: bool) -> dict[str, Any]:
    """A create request whose form api/openapi.yaml checked, split into Glance's fields and free-form
    properties; reserved property names are refused (owner is an admin's to give)."""
    body: dict[str, Any] = {"properties": {}}
    for key, value in data.items():
        if key == "owner" and is_admin:  # Glance lets admins create an image for another project
            body["owner"] = value
        elif key in CREATE_KEYS:
            body[key] = value
        else:
            if key in RESERVED:
                raise BadRequest(key, "is reserved: it cannot be set as an image property")
            check_property(key, value)
            body["properties"][key] = value
    if body.get("tags") is not None:
        body["tags"] = typed_attribute("tags", body["tags"])  # without repeats
    return body


class Images:
    """GET /image/v2/images (filters: id, name, … with `in:`), POST."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _refuse_empty_id(req)
        token = token_of(req)
        views = [image_view(i) for i in self.catalog.visible(token)]
        for key in FILTERS:
            wanted = req.get_param(key)
            if wanted is not None:
                views = [v for v in views if _matches(v, key, wanted)]
        # Hidden images are left out of lists unless asked for (os_hidden=true), as in Glance.
        hidden = req.get_param_as_bool("os_hidden", default=False)
        views = [v for v in views if v["os_hidden"] == hidden]
        protected = req.get_param_as_bool("protected")
        if protected is not None:
            views = [v for v in views if v["protected"] == protected]
        for tag in req.get_param_as_list("tag") or []:
            views = [v for v in views if tag in v["tags"]]
        views = _by_member_status(req, token, self.catalog.members.of_project(token.project_id), views)
        views = _by_properties(req, views)
        send(resp, {"images": views, "schema": "/v2/schemas/images", "first": "/v2/images"})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = _create_body(read_json(req, self.config.max_json_body), token.is_admin)
        image = self.catalog.create(token, body)
        resp.set_header("Location", f"{req.prefix}/image/v2/images/{image.id}")
        send(resp, image_view(image), 201)


    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        _refuse_empty_id(req)
        raise falcon.HTTPMethodNotAllowed(["GET", "POST"])


# Query parameters Glance gives a meaning of its own; any other one filters on the image property of its name.
_LIST_PARAMETERS = {*FILTERS, "os_hidden", "protected", "tag", "limit", "marker", "sort", "sort_key", "sort_dir",
                    "member_status", "size_min", "size_max", "created_at", "updated_at", "checksum"}
_SORT_KEYS = ("created_at", "updated_at", "name", "size", "status", "id")


def _by_properties(req: falcon.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Glance's filters on additional properties (`?image_type=backup&instance_uuid=…`, as Nova's backup
    rotation and Tempest ask), then its sort_key/sort_dir when given (sort_dir defaults to desc)."""
    for key, wanted in req.params.items():
        if key not in _LIST_PARAMETERS and key not in CORE and isinstance(wanted, str):
            views = [v for v in views if v.get(key) == wanted]
    if req.get_param("sort_key") is None and req.get_param("sort_dir") is None:
        return views  # in the catalog's order, as before
    sort_key, sort_dir = req.get_param("sort_key") or "created_at", req.get_param("sort_dir") or "desc"
    if sort_key not in _SORT_KEYS:
        raise BadRequest("sort_key", f"{cut(sort_key)}: use one of {', '.join(_SORT_KEYS)}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest("sort_dir", f"{cut(sort_dir)}: use asc or desc")
    # Ties (created_at has whole seconds) keep the catalog's order, which is creation order.
    ranked = sorted(enumerate(views), key=lambda iv: (iv[1].get(sort_key) is not None,
                                                      str(iv[1].get(sort_key) or ""), iv[0]),
                    reverse=sort_dir == "desc")
    return [v for _, v in ranked]


def _by_member_status(req: falcon.Request, token: Token, shared_with: dict[str, str],
                      views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images shared with the caller's project are listed when its member status is `member_status`
    (accepted unless asked: pending, rejected or all), as Glance lists them."""
    wanted = req.get_param("member_status") or ACCEPTED
    if wanted not in (*STATUSES, "all"):
        raise BadRequest("member_status", f"{cut(wanted)}: use one of {', '.join(STATUSES)} or all")
    return [v for v in views if v["owner"] == token.project_id or v["id"] not in shared_with
            or wanted in ("all", shared_with[v["id"]])]


def refuse_oversized_data(req: falcon.Request, config: ApiConfig) -> None:
    """TooLarge, before a byte is read, when an upload's declared length is over `max_image_body`."""
    if req.content_length is not None and req.content_length > config.max_image_body:
        raise TooLarge(f"image data of {req.content_length} bytes exceeds the limit of {config.max_image_body}")


def _refuse_empty_id(req: falcon.Request) -> None:
    """`/v2/images/` names an image with an empty id: 404, as Glance (the app strips the trailing slash)."""
    if req.env.get("PATH_INFO", "").endswith("/"):
        raise NotFound("No image found with an empty ID")


class ImageItem:
    """GET, PATCH and DELETE /image/v2/images/{id}."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        send(resp, image_view(self.catalog.get(token_of(req), image_id)))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        token = token_of(req)
        changes = read_patch(req, self.config.max_json_body)
        image = self.catalog.update(token, image_id, lambda row: apply_patch(row, changes, token.is_admin, RESERVED))
        send(resp, image_view(image))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self.catalog.delete(token_of(req), image_id)
        resp.status = 204


class ImageTag:
    """PUT and DELETE /image/v2/images/{id}/tags/{tag}."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str, tag: str) -> None:
        if not 0 < len(tag) <= MAX_PROPERTY:
            raise BadRequest("tag", f"a tag has 1 to {MAX_PROPERTY} characters")
        self.catalog.add_tag(token_of(req), image_id, tag)
        resp.status = 204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str, tag: str) -> None:
        self.catalog.remove_tag(token_of(req), image_id, tag)
        resp.status = 204


class ImageAction:
    """POST /image/v2/images/{id}/actions/deactivate and …/reactivate (the owner or an admin)."""

    def __init__(self, catalog: ImageCatalog):
        self.catalog = catalog

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str, action: str) -> None:
        if action not in ("deactivate", "reactivate"):
            raise NotFound(f"No image action {describe(action)}: use deactivate or reactivate")
        self.catalog.set_active(token_of(req), image_id, action == "reactivate")
        resp.status = 204


class ImageFile:
    """PUT /image/v2/images/{id}/file: the data, streamed into the store; GET streams it back."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        refuse_oversized_data(req, self.config)
        self.catalog.upload(token_of(req), image_id, req.bounded_stream, req.content_length)
        resp.status = 204

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        token = token_of(req)
        if self.catalog.get(token, image_id).status in (QUEUED, UPLOADING):
            resp.status = 204  # no data to read yet: Glance's 204
            return
        record = self.catalog.record(token, image_id)
        resp.content_type = "application/octet-stream"
        if record.md5:
            resp.set_header("Content-MD5", record.md5)
        resp.set_stream(open(record.path, "rb"), record.size)
