"""GET /image/v2/schemas/...: the JSON schemas Glance publishes for its documents.

Clients read them to know an image's fields (python-glanceclient builds its
`image-create` options from /v2/schemas/image). The image schema lists the
fields api/image/views.py shows; the others name their document as Glance does.
"""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.errors import NotFound
from api.http import send
from api.image.members import STATUSES
from api.image.patch import CONTAINER_FORMATS, DISK_FORMATS, MAX_PROPERTY, MAX_TAGS
from provisioner.excerpt import describe
from provisioner.images.records import VISIBILITIES

_STRING, _NULLABLE = {"type": "string"}, {"type": ["null", "string"]}
_READ_ONLY = {"readOnly": True}
_IMAGE_PROPERTIES: dict[str, Any] = {
    "id": {**_STRING, "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-"
                                 "([0-9a-fA-F]){12}$", "description": "An identifier for the image"},
    "name": {**_NULLABLE, "maxLength": MAX_PROPERTY, "description": "Descriptive name for the image"},
    "status": {**_STRING, **_READ_ONLY, "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                                                 "importing", "pending_delete", "deactivated"]},
    "visibility": {**_STRING, "enum": list(VISIBILITIES)},
    "protected": {"type": "boolean"},
    "os_hidden": {"type": "boolean"},
    "owner": {**_NULLABLE, "maxLength": MAX_PROPERTY},
    "checksum": {**_NULLABLE, **_READ_ONLY, "maxLength": 32},
    "os_hash_algo": {**_NULLABLE, **_READ_ONLY, "maxLength": 64},
    "os_hash_value": {**_NULLABLE, **_READ_ONLY, "maxLength": 128},
    "min_ram": {"type": "integer"},
    "min_disk": {"type": "integer"},
    "size": {"type": ["null", "integer"], **_READ_ONLY},
    "virtual_size": {"type": ["null", "integer"], **_READ_ONLY},
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
    "created_at": {**_STRING, **_READ_ONLY},
    "updated_at": {**_STRING, **_READ_ONLY},
    "tags": {"type": "array", "maxItems": MAX_TAGS, "items": {**_STRING, "maxLength": MAX_PROPERTY}},
    "self": {**_STRING, **_READ_ONLY},
    "file": {**_STRING, **_READ_ONLY},
    "schema": {**_STRING, **_READ_ONLY},
}
_IMAGE_LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                {"rel": "describedby", "href": "{schema}"}]
IMAGE: dict[str, Any] = {"name": "image", "properties": _IMAGE_PROPERTIES,
                         "additionalProperties": {**_STRING, "maxLength": MAX_PROPERTY}, "links": _IMAGE_LINKS}
MEMBER: dict[str, Any] = {"name": "member", "properties": {
    "image_id": {**_STRING}, "member_id": {**_STRING}, "status": {**_STRING, "enum": list(STATUSES)},
    "created_at": {**_STRING}, "updated_at": {**_STRING}, "schema": {**_STRING, **_READ_ONLY}}}


def _collection(name: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A list document's schema (`images`, `members`, …), as Glance's."""
    return {"name": name, "properties": {key: {"type": "array", "items": item},
                                         "schema": {**_STRING}, "first": {**_STRING}, "next": {**_STRING}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def _metadef(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"name": name, "properties": properties, "required": required, "additionalProperties": False}


_NAMED = {"name": {**_STRING, "maxLength": 80}, "created_at": {**_STRING, **_READ_ONLY},
          "updated_at": {**_STRING, **_READ_ONLY}}
_NAMESPACE = _metadef("namespace", {
    "namespace": {**_STRING, "maxLength": 80}, "display_name": {**_STRING, "maxLength": 80},
    "description": {**_STRING, "maxLength": 500}, "visibility": {**_STRING, "enum": ["public", "private"]},
    "protected": {"type": "boolean"}, "owner": {**_STRING, "maxLength": MAX_PROPERTY},
    "created_at": {**_STRING, **_READ_ONLY}, "updated_at": {**_STRING, **_READ_ONLY}}, ["namespace"])
_OBJECT = _metadef("object", {**_NAMED, "description": {**_STRING}, "required": {"type": "array"},
                              "properties": {"type": "object"}}, ["name"])
_PROPERTY = _metadef("property", {"name": {**_STRING, "maxLength": 80}, "title": {**_STRING},
                                  "type": {**_STRING}, "description": {**_STRING}}, ["name", "title", "type"])
_TAG = _metadef("tag", _NAMED, ["name"])
_RESOURCE_TYPE = _metadef("resource_type_association", {
    **_NAMED, "prefix": {**_STRING, "maxLength": 80}, "properties_target": {**_STRING, "maxLength": 80}},
    ["name"])

SCHEMAS: dict[str, dict[str, Any]] = {
    "image": IMAGE, "images": _collection("images", "images", IMAGE),
    "member": MEMBER, "members": _collection("members", "members", MEMBER),
    "metadefs/namespace": _NAMESPACE, "metadefs/namespaces": _collection("namespaces", "namespaces", _NAMESPACE),
    "metadefs/object": _OBJECT, "metadefs/objects": _collection("objects", "objects", _OBJECT),
    "metadefs/property": _PROPERTY, "metadefs/properties": _collection("properties", "properties", _PROPERTY),
    "metadefs/tag": _TAG, "metadefs/tags": _collection("tags", "tags", _TAG),
    "metadefs/resource_type": _RESOURCE_TYPE,
    "metadefs/resource_types": _collection("resource_type_associations", "resource_type_associations",
                                           _RESOURCE_TYPE),
}


class Schema:
    """GET /image/v2/schemas/{name} and /image/v2/schemas/metadefs/{name}."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        token_of(req)
        schema = SCHEMAS.get(self.prefix + name)
        if schema is None:
            raise NotFound(f"No schema {describe(self.prefix + name)}")
        send(resp, schema)
