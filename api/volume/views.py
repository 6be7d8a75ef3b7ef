"""Cinder v3 JSON bodies."""

from __future__ import annotations

from typing import Any

from api.http import isotime
from api.volume.backend import BACKEND, POOL_HOST
from api.volume.models import Snapshot, Volume
from provisioner.layout import POOL_NAME


def _links(base_url: str, kind: str, item_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base_url}/volume/v3/{kind}/{item_id}"},
            {"rel": "bookmark", "href": f"{base_url}/volume/{kind}/{item_id}"}]


def attachment_view(volume: Volume) -> dict[str, Any]:
    """A volume's attachment by Nova as Cinder lists it (`volume list` prints server_id and device)."""
    return {"id": volume.id, "attachment_id": volume.id, "volume_id": volume.id, "server_id": volume.server_id,
            "host_name": None, "device": volume.device, "attached_at": isotime(volume.attached_at, micro=True)}


def recorded_view(volume: Volume) -> dict[str, Any]:
    """An attachment os-attach recorded, as Cinder lists it (`id` is the volume's, as in Cinder)."""
    return {"id": volume.id, "attachment_id": volume.recorded_id, "volume_id": volume.id,
            "server_id": volume.recorded_server, "host_name": volume.recorded_host,
            "device": volume.recorded_mountpoint, "attached_at": isotime(volume.recorded_at, micro=True)}


def attachments(volume: Volume) -> list[dict[str, Any]]:
    """Its attachments: Nova's, or the one os-attach recorded (a volume has at most one: no multiattach)."""
    if volume.attached:
        return [attachment_view(volume)]
    return [recorded_view(volume)] if volume.recorded else []


def volume_view(volume: Volume, base_url: str, tenant: bool = True, admin: bool = False,
                groups: bool = False) -> dict[str, Any]:
    """A volume (detail form; why one is in error is a user message, api.volume.messages). `tenant`: with
    os-vol-tenant-attr:tenant_id, which Cinder shows on show and list but not in the answer to a create;
    `admin` (with `tenant`): also the host and migration attributes Cinder shows admins; `groups` (3.13): its
    group_id."""
    body: dict[str, Any] = {
        "id": volume.id, "name": volume.name, "status": volume.status, "size": volume.size,
        "description": volume.description, "metadata": volume.metadata,
        "attachments": attachments(volume),
        "availability_zone": volume.availability_zone, "bootable": "true" if volume.bootable else "false",
        "encrypted": False, "multiattach": False, "volume_type": volume.volume_type, "snapshot_id": volume.snapshot_id,
        "source_volid": volume.source_volid, "consistencygroup_id": None, "migration_status": None,
        "replication_status": None, "user_id": volume.user_id,
        "created_at": isotime(volume.created, micro=True), "updated_at": isotime(volume.updated, micro=True),
        "links": _links(base_url, "volumes", volume.id),
    }
    if groups:
        body["group_id"] = volume.group_id
    if tenant:
        body["os-vol-tenant-attr:tenant_id"] = volume.project_id
        # Likewise only on show and list (Tempest's create and update schemas refuse it).
        if volume.image_id or volume.image_metadata:
            body["volume_image_metadata"] = volume.image_metadata
        if admin:
            # Cinder's host@backend#pool, the host its hypervisor (a record from before: this machine's).
            host = f"{volume.hypervisor}@{BACKEND}#{POOL_NAME}" if volume.hypervisor else POOL_HOST
            body.update({"os-vol-host-attr:host": host if volume.scheduled else None,
                         "os-vol-mig-status-attr:migstat": None, "os-vol-mig-status-attr:name_id": None})
    return body


def snapshot_view(snapshot: Snapshot, detail: bool = True) -> dict[str, Any]:
    """A snapshot; `detail` (show and list/detail) adds the os-extended-snapshot-attributes. Cinder adds
    user_id from 3.41 on, which Tempest's schemas do not accept yet: left out."""
    body: dict[str, Any] = {
        "id": snapshot.id, "name": snapshot.name, "status": snapshot.status, "size": snapshot.size,
        "volume_id": snapshot.volume_id, "description": snapshot.description, "metadata": snapshot.metadata,
        "created_at": isotime(snapshot.created, micro=True), "updated_at": isotime(snapshot.updated, micro=True),
    }
    if detail:
        body["os-extended-snapshot-attributes:project_id"] = snapshot.project_id
        body["os-extended-snapshot-attributes:progress"] = snapshot.progress or (
            "100%" if snapshot.status == "available" else "0%")
    return body
