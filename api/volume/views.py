"""Cinder v3 JSON bodies."""

from __future__ import annotations

from typing import Any

from api.http import isotime
from api.volume.models import Snapshot, Volume


def _links(base_url: str, kind: str, item_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base_url}/volume/v3/{kind}/{item_id}"},
            {"rel": "bookmark", "href": f"{base_url}/volume/{kind}/{item_id}"}]


def attachment_view(volume: Volume) -> dict[str, Any]:
    """A volume's attachment as Cinder lists it (`volume list` prints server_id and device)."""
    return {"id": volume.id, "attachment_id": volume.id, "volume_id": volume.id, "server_id": volume.server_id,
            "host_name": None, "device": volume.device, "attached_at": isotime(volume.attached_at, micro=True)}


def volume_view(volume: Volume, base_url: str) -> dict[str, Any]:
    """A volume (detail form); `fault` (not Cinder's) says why it is in error."""
    body: dict[str, Any] = {
        "id": volume.id, "name": volume.name, "status": volume.status, "size": volume.size,
        "description": volume.description, "metadata": volume.metadata,
        "attachments": [attachment_view(volume)] if volume.attached else [],
        "availability_zone": "nova", "bootable": "false", "encrypted": False, "multiattach": False,
        "volume_type": "__DEFAULT__", "snapshot_id": None, "source_volid": None, "consistencygroup_id": None,
        "replication_status": None, "user_id": volume.user_id,
        "os-vol-tenant-attr:tenant_id": volume.project_id,
        "created_at": isotime(volume.created, micro=True), "updated_at": isotime(volume.updated, micro=True),
        "links": _links(base_url, "volumes", volume.id),
    }
    if volume.fault:
        body["fault"] = {"message": volume.fault}
    return body


def snapshot_view(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot (detail form)."""
    body: dict[str, Any] = {
        "id": snapshot.id, "name": snapshot.name, "status": snapshot.status, "size": snapshot.size,
        "volume_id": snapshot.volume_id, "description": snapshot.description, "metadata": snapshot.metadata,
        "user_id": snapshot.user_id, "os-extended-snapshot-attributes:project_id": snapshot.project_id,
        "os-extended-snapshot-attributes:progress": "100%" if snapshot.status == "available" else "0%",
        "created_at": isotime(snapshot.created, micro=True), "updated_at": isotime(snapshot.updated, micro=True),
    }
    if snapshot.fault:
        body["fault"] = {"message": snapshot.fault}
    return body
