"""Glance v2 JSON bodies."""

from __future__ import annotations

from typing import Any

from api.http import isotime
from api.image.catalog import Image

CORE = ("id", "name", "status", "visibility", "owner", "protected", "os_hidden", "disk_format", "container_format",
        "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "tags",
        "created_at", "updated_at", "self", "file", "schema")


def image_view(image: Image) -> dict[str, Any]:
    """An image as Glance shows it: core fields, then its properties flat."""
    row, record = image.row, image.record
    created = isotime(row.created) if row else record.imported_at
    body: dict[str, Any] = {
        "id": image.id, "name": row.name if row else record.name,
        "status": image.status, "visibility": image.visibility, "owner": image.owner,
        "protected": row.protected if row else False, "os_hidden": row.os_hidden if row else False,
        "disk_format": record.format if record else row.disk_format,
        "container_format": (row.container_format if row else None) or "bare",
        "size": record.size if record else None, "virtual_size": record.virtual_size if record else None,
        "checksum": record.checksum if record else None,
        "os_hash_algo": record.os_hash_algo if record else None,
        "os_hash_value": record.os_hash_value if record else None,
        "min_disk": row.min_disk if row else 0, "min_ram": row.min_ram if row else 0,
        "tags": list(row.tags) if row else [],
        "created_at": created, "updated_at": isotime(row.updated) if row else created,
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file", "schema": "/v2/schemas/image",
    }
    properties = row.properties if row else dict(record.properties)
    body.update({k: v for k, v in properties.items() if k not in CORE})
    return body
