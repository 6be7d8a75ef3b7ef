"""Glance's image update: a JSON-patch request body -> a new image row.

Glance takes two patch dialects: v2.1 (`{"op": "replace", "path": "/name",
"value": …}`, RFC 6902) and v2.0 (`{"replace": "/name", "value": …}`), named
by the request's content type. Paths are one level deep (`/name`, `/tags`,
`/my_property`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import falcon

from api.errors import ApiError, BadRequest, Conflict, Forbidden
from api.http import read_json_value
from api.image.catalog import QUEUED, ImageRow
from provisioner.errors import InputError
from provisioner.excerpt import cut, describe
from provisioner.images.names import check_name
from provisioner.images.records import VISIBILITIES

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
OPS = ("add", "replace", "remove")
DISK_FORMATS = ("qcow2", "raw")
CONTAINER_FORMATS = ("bare",)
# Glance computes these; a patch may not touch them (403, as Glance answers).
READ_ONLY = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size", "created_at",
             "updated_at", "self", "file", "schema", "direct_url", "locations")
# Glance's own namespace for properties it sets (os_glance_import_task, …).
RESERVED_PREFIX = "os_glance"
MAX_PROPERTY = 255  # characters of a property name or value, as Glance's schema
MAX_TAGS = 128


class UnsupportedMediaType(ApiError):
    status, kind, title = 415, "unsupportedMediaType", "Unsupported Media Type"


@dataclass(frozen=True)
class Change:
    """One patch operation on one attribute."""

    op: str
    name: str
    value: Any = None


def read_patch(req: falcon.Request, max_bytes: int) -> list[Change]:
    """The request's patch operations; 415 for another content type, 400 naming the operation at fault."""
    media = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"Content-Type must be {MEDIA_TYPES[0]} (or the v2.0 dialect), "
                                   f"not {describe(media)}")
    operations = read_json_value(req, max_bytes, malformed="malformed JSON patch")
    if not isinstance(operations, list):
        raise BadRequest("body", "a JSON patch is a list of operations")
    return [_change(index, item, media == MEDIA_TYPES[0]) for index, item in enumerate(operations)]


def _change(index: int, item: Any, rfc6902: bool) -> Change:
    at = f"patch[{index}]"
    if not isinstance(item, dict):
        raise BadRequest(at, "must be an object")
    if rfc6902:
        op, path = item.get("op"), item.get("path")
    else:
        ops = [key for key in OPS if key in item]
        op, path = (ops[0], item[ops[0]]) if len(ops) == 1 else (None, None)
    if op not in OPS:
        raise BadRequest(at, f"the operation must be one of {', '.join(OPS)}")
    if not isinstance(path, str) or not path.startswith("/") or "/" in path[1:] or len(path) < 2:
        raise BadRequest(f"{at}.path", f"{describe(path)}: use /ATTRIBUTE (one level)")
    if op != "remove" and "value" not in item:
        raise BadRequest(f"{at}.value", f"is required for {op}")
    # JSON pointer escapes (RFC 6901).
    return Change(op, path[1:].replace("~1", "/").replace("~0", "~"), item.get("value"))


def typed_attribute(name: str, value: Any) -> Any:
    """`value` checked for the core attribute `name`; BadRequest naming it."""
    if name == "name":
        if not isinstance(value, str):
            raise BadRequest("name", f"{describe(value)} is not a string")
        try:
            check_name(value)  # the store files versions under it
        except InputError as exc:
            raise BadRequest("name", exc.message) from None
    elif name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(name, f"{describe(value)} is not a boolean")
    elif name in ("min_disk", "min_ram"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadRequest(name, f"{describe(value)} is not a non-negative integer")
    elif name == "visibility":
        if value not in VISIBILITIES:
            raise BadRequest("visibility", f"{describe(value)}: use one of {', '.join(VISIBILITIES)}")
    elif name == "tags":
        if (not isinstance(value, list) or len(value) > MAX_TAGS
                or not all(isinstance(t, str) and 0 < len(t) <= MAX_PROPERTY for t in value)):
            raise BadRequest("tags", f"must be a list of at most {MAX_TAGS} non-empty strings")
        value = list(dict.fromkeys(value))
    elif name in ("disk_format", "container_format"):
        allowed = DISK_FORMATS if name == "disk_format" else CONTAINER_FORMATS
        if value not in allowed:
            raise BadRequest(name, f"{describe(value)}: supported are {', '.join(allowed)}")
    return value


EDITABLE = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "tags", "disk_format",
            "container_format")


def check_property(name: str, value: Any) -> None:
    """A free-form property: not Glance's namespace (403), a string name and value (400)."""
    if name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"property {cut(name)}: names starting with {RESERVED_PREFIX} are reserved for Glance")
    if not isinstance(value, str):
        raise BadRequest(describe(name), f"{describe(value)}: extra properties must be strings")
    if not name or len(name) > MAX_PROPERTY or len(value) > MAX_PROPERTY:
        raise BadRequest(describe(name), f"a property's name and value have at most {MAX_PROPERTY} characters "
                                         "(and a name at least one)")


def apply_patch(row: ImageRow, changes: list[Change], is_admin: bool, reserved: frozenset[str]) -> ImageRow:
    """The row after `changes`, all or nothing; `reserved` are property names the store keeps for itself."""
    core = {name: getattr(row, name) for name in EDITABLE}
    owner = row.project_id
    properties = dict(row.properties)
    for change in changes:
        name = change.name
        if name in READ_ONLY:
            raise Forbidden(f"Attribute '{name}' is read-only.")
        if name == "owner":  # an admin gives the image to another project, as Glance allows
            if not is_admin:
                raise Forbidden("Attribute 'owner' can only be changed by an admin.")
            if change.op == "remove" or not isinstance(change.value, str) or not 0 < len(change.value) <= 255:
                raise BadRequest("owner", f"{describe(change.value)}: a project id of 1 to 255 characters")
            owner = change.value
            continue
        if name in EDITABLE:
            if change.op == "remove":
                raise Forbidden(f"Attribute '{name}' cannot be removed.")
            if name in ("disk_format", "container_format") and row.status != QUEUED:
                raise Forbidden(f"Attribute '{name}' can be only replaced for a queued image.")
            value = typed_attribute(name, change.value)
            if name == "visibility" and value in ("public", "community") and not is_admin:
                raise Forbidden(f"making an image {value} requires the admin role")
            core[name] = value
            continue
        if name in reserved:
            raise Forbidden(f"property {cut(name)} is reserved: it cannot be set as an image property")
        if change.op == "remove":
            if properties.pop(name, None) is None:
                raise Conflict(f"Property {cut(name)} does not exist.")
            continue
        check_property(name, change.value)
        if change.op == "replace" and name not in properties:
            raise Conflict(f"Property {cut(name)} does not exist.")
        properties[name] = change.value
    return replace(row, properties=properties, project_id=owner, **core)
