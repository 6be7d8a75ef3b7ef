"""Cinder v3 request handling: volumes (blank, or a copy of a snapshot, another volume or an image), snapshots, their
metadata, volume actions (os-extend, os-set_bootable, os-update_readonly_flag, os-retype, the image metadata ones,
the attachment records) and availability zones."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import ApiConfig
from api.errors import BadRequest, Forbidden, NotFound
from api.http import read_json, send
from api.microversion import Version
from api.identity.tokens import Token
from api.image.catalog import ImageCatalog
from api.quota.models import VOLUME
from api.quota.store import QuotaStore
from api.volume import listing, messages, microversion
from api.volume.backend import Backend
from api.volume.encryption import EncryptionStore
from api.volume.groups import GroupStore
from api.volume.placement import Placed, VolumePlacement
from api.volume.models import (
    ATTACHING,
    AVAILABLE,
    CREATING,
    DELETING,
    ERROR,
    GIB,
    IN_USE,
    RecordedAttach,
    Snapshot,
    Volume,
)
from api.volume.store import VolumeStore, invalid_volume
from api.volume.types import TypeStore, boolish
from api.volume.upload import VolumeUploads
from api.volume.views import snapshot_view, volume_view
from api.volume.worker import VolumeWorker
from provisioner.excerpt import describe
from provisioner.volumes import CONTENT_FORMATS

# Cinder's actions that are not implemented here: refused once the volume is found (a missing one is a 404).
UNSUPPORTED_ACTIONS = ("os-initialize_connection", "os-terminate_connection", "os-migrate_volume", "os-unmanage",
                       "revert")
# Ways to fill a new volume that are not supported yet: a non-null value is refused, not ignored.
UNSUPPORTED_SOURCES = ("backup_id", "consistencygroup_id")
SOURCES = ("snapshot_id", "source_volid", "imageRef")


def version_document(base_url: str) -> dict[str, Any]:
    """Cinder's v3 version entry."""
    return {"id": "v3.0", "status": "CURRENT", "version": str(microversion.MAX),
            "min_version": str(microversion.MIN),
            "updated": "2023-05-25T00:00:00Z", "links": [{"rel": "self", "href": f"{base_url}/volume/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


def _text(body: dict[str, Any], key: str) -> str:
    """A name or description (null is empty)."""
    value = body.get(key)
    return "" if value is None else value


def _common(body: dict[str, Any]) -> dict[str, Any]:
    """name, description and metadata of a new volume or snapshot."""
    return {"name": _text(body, "name"), "description": _text(body, "description"),
            "metadata": body.get("metadata") or {}}


def _update(body: dict[str, Any], where: str) -> dict[str, Any]:
    """The fields a PUT changes: name (display_name), description (display_description), metadata."""
    changes: dict[str, Any] = {}
    for key, legacy in (("name", "display_name"), ("description", "display_description")):
        for given in (legacy, key):
            if given in body:
                changes[key] = _text(body, given)
    if "metadata" in body:
        changes["metadata"] = body["metadata"] or {}
    if not changes:
        raise BadRequest(where, "give at least one of name, description and metadata")
    return changes


def _size(body: dict[str, Any], largest: int, smallest: int | None) -> int:
    """Cinder's `size` in GiB, at most `largest`; when the volume copies something of `smallest` GiB,
    optional (that size) and at least that."""
    if body.get("size") is None:
        if smallest is not None:
            return smallest
        raise BadRequest("volume.size", "is required")
    size = int(body["size"])  # an integer or a string of digits (api/openapi.yaml's VolumeSize)
    if size < 1:
        raise BadRequest("volume.size", f"{size} GiB: must be at least 1")
    if smallest is not None and size < smallest:
        raise BadRequest("volume.size", f"{size} GiB: smaller than its source ({smallest} GiB)")
    if size > largest:
        raise BadRequest("volume.size", f"{size} GiB: larger than max_volume_size ({largest} GiB) in the API's "
                                        "config.yaml")
    return size


def _gib(size: int) -> int:
    """Bytes as whole GiB, rounded up (at least 1: the smallest volume)."""
    return max(1, -(-size // GIB))


def _image_fits(body: dict[str, Any], image_id: str, image_bytes: int, virtual_gib: int, min_disk: int) -> None:
    """Cinder's refusal (its words) of a volume `size` an image does not fit in: its data, its min_disk, then
    its virtual size (no size given: the volume takes the image's)."""
    if body.get("size") is None or int(body["size"]) < 1:
        return  # _size's answers
    size = int(body["size"])
    if _gib(image_bytes) > size:
        raise BadRequest("volume.size", f"Invalid input received: Size of specified image {_gib(image_bytes)}GB "
                                        f"is larger than volume size {size}GB.")
    if size < min_disk:
        raise BadRequest("volume.size", f"Invalid input received: Volume size {size}GB cannot be smaller than the "
                                        f"image minDisk size {min_disk}GB.")
    if virtual_gib > size:
        raise BadRequest("volume.size", f"Image {image_id} is unacceptable: Image virtual size is {virtual_gib}GB "
                                        f"and doesn't fit in a volume of size {size}GB.")


def _forced(value: bool | str | None) -> bool:
    """A snapshot's `force`, as Cinder reads it (strictly a boolean or its text; api/openapi.yaml's form)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"):
        raise BadRequest("snapshot.force", f"{describe(value)} is not a boolean")
    return value.lower() in ("true", "1", "yes", "on", "t", "y")


def _scope(req: falcon.Request, token: Token) -> list[str] | None:
    """The projects a listing covers: all_tenants (and project_id, to narrow it) for admins."""
    all_projects = req.get_param_as_bool("all_tenants", default=False) or False
    return VolumeStore.scope(token, all_projects, req.get_param("project_id"))


class Volumes:
    """GET /volume/v3/volumes[/detail] (filters, sort, limit/marker), POST (202, creating → available or error;
    blank or a copy of `snapshot_id`, `source_volid` or `imageRef`; quotas volumes, gigabytes, per_volume_gigabytes)."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, quotas: QuotaStore,
                 types: TypeStore, images: ImageCatalog, backend: Backend, groups: GroupStore,
                 encryption: EncryptionStore):
        self.config = config
        self.encryption = encryption
        self.store = store
        self.worker = worker
        self.quotas = quotas
        self.types = types
        self.images = images
        self.backend = backend
        self.groups = groups

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        token = token_of(req)
        found = listing.page(req, self.store.volumes.list(_scope(req, token)))
        groups = microversion.version_of(req) >= microversion.GROUPS
        views = [volume_view(v, req.prefix, admin=token.is_admin, groups=groups) for v in found.items]
        if not detail:
            views = [{k: view[k] for k in ("id", "name", "links")} for view in views]
        send(resp, {"volumes": views, **listing.links(req, "volumes", found)})

    def on_get_summary(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /volume/v3/volumes/summary (3.12): count and GiB of the volumes listed (3.36: their metadata)."""
        version = microversion.version_of(req)
        if version < microversion.VOLUME_SUMMARY:
            raise NotFound("The resource could not be found (volumes/summary needs microversion 3.12).")
        token = token_of(req)
        volumes = self.store.volumes.list(_scope(req, token))
        summary: dict[str, Any] = {"total_size": sum(v.size for v in volumes), "total_count": len(volumes)}
        if version >= microversion.SUMMARY_METADATA:
            metadata: dict[str, list[str]] = {}
            for volume in volumes:
                for key, value in volume.metadata.items():
                    if value not in metadata.setdefault(key, []):
                        metadata[key].append(value)
            summary["metadata"] = metadata
        send(resp, {"volume-summary": summary})

    def _source(self, token: Any, body: dict[str, Any]) -> dict[str, Any]:
        """What a new volume copies (snapshot_id, source_volid or imageRef, at most one), and the size it
        needs."""
        given = [k for k in SOURCES if body.get(k) is not None]
        if len(given) > 1:
            raise BadRequest("volume", f"give at most one of {', '.join(SOURCES)}")
        if not given:
            return {}
        key = given[0]
        source_id = body[key]
        if key == "snapshot_id":
            snapshot = self.store.snapshot(token, source_id)
            if snapshot.status != AVAILABLE:
                raise BadRequest("volume.snapshot_id", f"Invalid snapshot: snapshot {snapshot.id} is "
                                                       f"{snapshot.status}: it must be available")
            return {"snapshot_id": snapshot.id, "size": snapshot.size, "hypervisor": snapshot.hypervisor}
        if key == "imageRef":
            return self._image(token, source_id)
        volume = self.store.volume(token, source_id)
        if volume.status not in (AVAILABLE, IN_USE):
            raise invalid_volume(f"volume {volume.id} status must be available or in-use, but current status "
                                 f"is: {volume.status}")
        return {"source_volid": volume.id, "size": volume.size, "bootable": volume.bootable,
                "hypervisor": volume.hypervisor}

    def _image(self, token: Any, image_id: str) -> dict[str, Any]:
        """A volume from an image: a copy of its file (qcow2, or raw converted to qcow2), bootable, at least
        its virtual size."""
        try:
            image = self.images.get(token, image_id)
            record = self.images.record(token, image_id)
        except NotFound:
            raise BadRequest("volume.imageRef", f"Invalid image identifier or unable to access requested image: "
                                                f"{describe(image_id)}") from None
        except Forbidden as exc:  # deactivated: Cinder's answer is a 400 naming the image, not Glance's 403
            raise BadRequest("volume.imageRef", f"Image {describe(image_id)} is not active: {exc.message}") from None
        if record.format not in CONTENT_FORMATS:
            raise BadRequest("volume.imageRef", f"image {image.id} is {record.format}: only a "
                                                f"{' or '.join(CONTENT_FORMATS)} image can be copied into a volume")
        name = image.row.name if image.row else record.name
        metadata = {"image_id": image.id, "image_name": name or "", "disk_format": record.format,
                    "container_format": "bare", "checksum": record.md5 or "", "size": str(record.size)}
        # A raw image is converted into the qcow2 volume when it is made (provisioner.volumes), as Cinder does.
        return {"image_id": image.id, "image_file": str(record.path), "image_format": record.format,
                "image_metadata": metadata, "bootable": True, "size": _gib(record.virtual_size),
                "image_bytes": record.size, "min_disk": image.row.min_disk if image.row else 0}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Its form (types, lengths, the one zone) is api/openapi.yaml's; what is not supported is refused here.
        body = read_json(req, self.config.max_json_body)["volume"]
        version = microversion.version_of(req)
        volume = self.create(token_of(req), body, version)
        # Cinder's answer to a create has no os-vol-tenant-attr (Tempest's schema refuses it).
        send(resp, {"volume": volume_view(volume, req.prefix, tenant=False, groups=version >= microversion.GROUPS)},
             202)

    def _place(self, body: dict[str, Any], source: dict[str, Any], size: int, on: str | None) -> Placed:
        """The hypervisor of a new volume: a copy's is its source's, a volume of a server's block device mapping
        (`on`) its server's, else the zone's with the most free disk (api.volume.placement)."""
        placement = self.worker.placement
        zone = body.get("availability_zone")
        placement.check_zone(zone, "volume.availability_zone")
        if "hypervisor" in source:
            what = "snapshot" if source.get("snapshot_id") else "source volume"
            placed = placement.same_zone(zone, source.pop("hypervisor"), what, "volume.availability_zone")
            if on is not None and placed.host is not None and placed.host.name != on:
                raise BadRequest("volume", f"the {what} is on hypervisor {placed.host.name}, the server on {on}: a "
                                           "volume is made on its source's hypervisor")
            return placed
        if on is not None:
            host = placement.host_of(on)
            return Placed(host, host.zone)
        return placement.choose(zone, size)

    def create(self, token: Token, body: dict[str, Any], version: Version, on: str | None = None) -> Volume:
        """Record the volume a validated create body's `volume` asks for and queue its build (Nova's
        os-volumes proxy and boot from volume create through here too; `on`: the hypervisor of the server whose
        block device mapping it is)."""
        for key in UNSUPPORTED_SOURCES:
            if body.get(key) is not None:
                raise BadRequest(f"volume.{key}", "creating a volume from it is not supported yet")
        if body.get("multiattach"):
            raise BadRequest("volume.multiattach", "multiattach volumes are not supported")
        requested_type = body.get("volume_type")
        vtype = self.types.get(token, "__DEFAULT__" if requested_type is None else requested_type)
        self.encryption.refuse_encrypted(vtype, "volume.volume_type")
        source = self._source(token, body)
        if "image_bytes" in source:
            _image_fits(body, source["image_id"], source.pop("image_bytes"), source["size"], source["min_disk"])
            source["size"] = max(source["size"], source.pop("min_disk"))  # no size given: at least its min_disk
        if body.get("group_id") is not None:
            if version < microversion.GROUPS:
                raise BadRequest("volume.group_id", f"needs microversion {microversion.GROUPS}")
            group = self.groups.get(token, body["group_id"])
            self.groups.check_type(group, vtype.name)
            source["group_id"] = group.id
        size = _size(body, self.config.max_volume_size, source.pop("size", None))
        placed = self._place(body, source, size, on)
        now = time.time()
        # As Cinder's scheduler: a volume no backend takes is still recorded (and counted), in error.
        unplaced = self.backend.unplaceable(vtype.extra_specs) or placed.reason
        volume = Volume(id=str(uuid.uuid4()), project_id=token.project_id, user_id=token.user_id, size=size,
                        created=now, updated=now, volume_type=vtype.name, **source, **_common(body),
                        hypervisor=placed.host.name if placed.host else "", availability_zone=placed.zone)
        if unplaced:
            volume = replace(volume, status=ERROR, fault=unplaced, scheduled=False)
        self.quotas.check_each(VOLUME, volume.project_id, {"per_volume_gigabytes": volume.size})
        with self.store.db.transaction():  # count and insert at once: no two creates take the last unit
            self.quotas.check(VOLUME, volume.project_id, {"volumes": 1, "gigabytes": volume.size})
            self.store.volumes.insert(volume)
        if unplaced:
            self.store.messages.record(volume.project_id, messages.VOLUME, volume.id, messages.ALLOCATE, unplaced)
        else:
            self.worker.create(volume)
        return volume


class VolumeItem:
    """GET, PUT (name, description, metadata) and DELETE /volume/v3/volumes/{id}."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker):
        self.config = config
        self.store = store
        self.worker = worker

    def on_get(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        token = token_of(req)
        volume = self.store.volume(token, volume_id)
        groups = microversion.version_of(req) >= microversion.GROUPS
        send(resp, {"volume": volume_view(volume, req.prefix, admin=token.is_admin, groups=groups)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        volume = self.store.volume(token_of(req), volume_id)
        changes = _update(read_json(req, self.config.max_json_body)["volume"], "volume")
        updated = self.store.change(volume.id, **changes) or volume
        groups = microversion.version_of(req) >= microversion.GROUPS
        send(resp, {"volume": volume_view(updated, req.prefix, tenant=False, groups=groups)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        volume = self.store.volume(token_of(req), volume_id)
        if req.get_param_as_bool("cascade", default=False):
            # Its snapshots first (each a copy of its own: the order of the destroys does not matter).
            for snapshot in self.store.of_volume(volume.id):
                if snapshot.status != DELETING:
                    self.worker.delete_snapshot(self.store.start_delete_snapshot(snapshot))
        self.worker.delete(self.store.start_delete(volume))
        resp.status = 202


class VolumeActions:
    """POST /volume/v3/volumes/{id}/action: os-extend (202; available, or in use from 3.42; only larger),
    os-set_bootable (200), os-update_readonly_flag (202), the attachment records (os-reserve, os-unreserve,
    os-attach, os-begin_detaching, os-roll_detaching, os-detach, os-force_detach: 202)."""

    # action -> its method; the spec's action list is these and UNSUPPORTED_ACTIONS (tests/api/test_validation.py).
    HANDLERS = {"os-extend": "_extend", "os-set_bootable": "_set_bootable", "os-update_readonly_flag": "_readonly",
                "os-reserve": "_reserve", "os-unreserve": "_unreserve", "os-reset_status": "_reset_status",
                "os-force_delete": "_force_delete", "os-retype": "_retype",
                "os-set_image_metadata": "_set_image_metadata", "os-unset_image_metadata": "_unset_image_metadata",
                "os-show_image_metadata": "_show_image_metadata", "os-attach": "_attach",
                "os-detach": "_detach", "os-begin_detaching": "_begin_detaching",
                "os-roll_detaching": "_roll_detaching", "os-force_detach": "_force_detach",
                "os-volume_upload_image": "_upload_image"}

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker, quotas: QuotaStore,
                 types: TypeStore, backend: Backend, encryption: EncryptionStore, uploads: VolumeUploads):
        self.config = config
        self.encryption = encryption
        self.uploads = uploads
        self.store = store
        self.worker = worker
        self.quotas = quotas
        self.types = types
        self.backend = backend

    def on_post(self, req: falcon.Request, resp: falcon.Response, volume_id: str) -> None:
        token = token_of(req)
        volume = self.store.volume(token, volume_id)
        # One action of api/openapi.yaml's list, its arguments of their form.
        action, args = next(iter(read_json(req, self.config.max_json_body).items()))
        if action in UNSUPPORTED_ACTIONS:
            raise BadRequest("body", f"action {action} is not supported: {', '.join(self.HANDLERS)} are")
        getattr(self, self.HANDLERS[action])(req, resp, volume, args or {})

    def _extend(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        size = int(args["new_size"])
        allowed = (AVAILABLE, IN_USE) if microversion.version_of(req) >= microversion.EXTEND_IN_USE else (
            AVAILABLE,)
        if volume.status not in allowed:
            raise invalid_volume(f"volume {volume.id} status must be {' or '.join(allowed)} to extend, but "
                                 f"current status is: {volume.status}")
        if size <= volume.size:
            raise BadRequest("os-extend.new_size", f"New size for extend must be greater than current size. "
                                                   f"(current: {volume.size}, extended: {size})")
        if size > self.config.max_volume_size:
            raise BadRequest("os-extend.new_size", f"{size} GiB: larger than max_volume_size "
                                                   f"({self.config.max_volume_size} GiB) in the API's config.yaml")
        self.quotas.check_each(VOLUME, volume.project_id, {"per_volume_gigabytes": size})
        with self.store.db.transaction():  # the added GiB count against the quota like a new volume's
            self.quotas.check(VOLUME, volume.project_id, {"gigabytes": size - volume.size})
            extending = self.store.start_extend(volume.id, size, allowed)
        self.worker.extend(extending)
        resp.status = 202

    def _reserve(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        """available → attaching (an attach about to start elsewhere)."""
        self.store.transition(volume.id, (AVAILABLE,), ATTACHING)
        resp.status = 202

    def _unreserve(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                   args: dict[str, Any]) -> None:
        """attaching (reserved, not attached) → available."""
        self.store.transition(volume.id, (ATTACHING,), AVAILABLE)
        resp.status = 202

    def _attach(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        """Record an attachment made by the caller (Cinder's os-attach only records; connecting the disk is the
        caller's job): available or reserved → in-use. (No volume here is encrypted: api.volume.encryption.)"""
        if args.get("instance_uuid") is None and args.get("host_name") is None:
            raise BadRequest("os-attach", "Invalid request to attach volume to an invalid target: give "
                                          "instance_uuid or host_name")
        mode = args.get("mode") or "rw"
        if mode == "rw" and volume.metadata.get("readonly") == "True":
            raise BadRequest("os-attach.mode", f"Invalid attaching mode '{mode}' for volume {volume.id}: it is "
                                               "read-only")
        self.store.record_attach(volume.id, RecordedAttach(
            attachment_id=str(uuid.uuid4()), instance_uuid=args.get("instance_uuid"),
            host_name=args.get("host_name"), mountpoint=args["mountpoint"], mode=mode))
        resp.status = 202

    def _detach(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        """Forget the recorded attachment (attachment_id, if given, must be it): available."""
        self.store.record_detach(volume.id, args.get("attachment_id"))
        resp.status = 202

    def _begin_detaching(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                         args: dict[str, Any]) -> None:
        """in-use → detaching (a detach about to start elsewhere)."""
        self.store.begin_detaching(volume.id)
        resp.status = 202

    def _roll_detaching(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                        args: dict[str, Any]) -> None:
        """detaching → in-use (the detach did not happen); other statuses stay."""
        self.store.roll_detaching(volume.id)
        resp.status = 202

    def _force_detach(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                      args: dict[str, Any]) -> None:
        """Admin: forget the recorded attachment whatever the volume's status: available. Safe because Cinder only
        recorded it; a volume Nova attached is refused (its disk is in the guest's domain)."""
        require_admin(token_of(req), "os-force_detach")
        try:
            self.store.record_detach(volume.id, args.get("attachment_id"), forced=True)
        except NotFound as exc:  # Cinder's answer to an unknown attachment here is a 400
            raise BadRequest("os-force_detach.attachment_id",
                             f"Error force detaching volume - VolumeAttachmentNotFound: {exc.message}") from None
        resp.status = 202

    def _upload_image(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                      args: dict[str, Any]) -> None:
        """Queue a Glance image of the volume's data (202): volume uploading, image queued → active."""
        newer = microversion.version_of(req) >= microversion.UPLOAD_VISIBILITY
        send(resp, {"os-volume_upload_image": self.uploads.start(token_of(req), volume, args, newer)}, 202)

    def _reset_status(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                      args: dict[str, Any]) -> None:
        """Admin: set the recorded status (nothing on the hypervisor changes), as Cinder's os-reset_status."""
        require_admin(token_of(req), "os-reset_status")
        status = args.get("status")
        if status is not None:
            self.store.change(volume.id, status=status)
        resp.status = 202

    def _force_delete(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                      args: dict[str, Any]) -> None:
        """Admin: delete whatever its status (not while attached or with snapshots, as a delete)."""
        require_admin(token_of(req), "os-force_delete")
        self.worker.delete(self.store.start_delete(volume, force=True))
        resp.status = 202

    def _retype(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        """Change its type. Every type lives on the one backend, so no migration is ever needed (either
        migration_policy does); the new type's extra specs must still fit the backend."""
        vtype = self.types.get(token_of(req), args["new_type"])
        if vtype.name == volume.volume_type:
            raise BadRequest("os-retype.new_type", f"Retype requires a different type: volume {volume.id} is "
                                                   f"already {describe(vtype.name)}")
        self.encryption.refuse_encrypted(vtype, "os-retype.new_type")
        unplaced = self.backend.unplaceable(vtype.extra_specs)
        if unplaced:
            raise BadRequest("os-retype.new_type", unplaced)
        self.store.retype(volume.id, vtype.name)
        resp.status = 202

    def _set_image_metadata(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                            args: dict[str, Any]) -> None:
        """Merge keys into its volume_image_metadata (200, all of it)."""
        merged = {**volume.image_metadata, **args["metadata"]}
        self.store.change(volume.id, image_metadata=merged)
        send(resp, {"metadata": merged})

    def _unset_image_metadata(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                              args: dict[str, Any]) -> None:
        """Remove one key of its volume_image_metadata (200, no body; 404 for a key it does not have)."""
        key = args["key"]
        if key not in volume.image_metadata:
            raise NotFound(f"Glance metadata for volume {volume.id} has no key {describe(key)}.")
        self.store.change(volume.id, image_metadata={k: v for k, v in volume.image_metadata.items() if k != key})
        resp.status = 200

    def _show_image_metadata(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                             args: dict[str, Any]) -> None:
        send(resp, {"metadata": volume.image_metadata})

    def _set_bootable(self, req: falcon.Request, resp: falcon.Response, volume: Volume,
                      args: dict[str, Any]) -> None:
        self.store.change(volume.id, bootable=boolish(args["bootable"]))
        resp.status = 200

    def _readonly(self, req: falcon.Request, resp: falcon.Response, volume: Volume, args: dict[str, Any]) -> None:
        value = boolish(args["readonly"])
        # Cinder keeps the flag in the volume's admin metadata and shows it as metadata `readonly`.
        self.store.change(volume.id, metadata={**volume.metadata, "readonly": str(value)})
        resp.status = 202


class Metadata:
    """GET, POST (merge) and PUT (replace) /volume/v3/{volumes|snapshots}/{id}/metadata; GET, PUT and DELETE
    …/metadata/{key} (suffix `key`)."""

    def __init__(self, config: ApiConfig, store: VolumeStore, kind: str):
        self.config = config
        self.store = store
        self.kind = kind  # "volume" or "snapshot"
        self.param = f"{kind}_id"  # the URL field naming the record

    def _record(self, req: falcon.Request, item_id: str) -> Volume | Snapshot:
        token = token_of(req)
        return self.store.volume(token, item_id) if self.kind == "volume" else self.store.snapshot(token, item_id)

    def _save(self, record: Volume | Snapshot, metadata: dict[str, str]) -> dict[str, str]:
        if self.kind == "volume":
            changed = self.store.change(record.id, metadata=metadata)
        else:
            changed = self.store.change_snapshot(record.id, metadata=metadata)
        return (changed or record).metadata

    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id = ids[self.param]
        send(resp, {"metadata": self._record(req, item_id).metadata})

    def on_post(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id = ids[self.param]
        record = self._record(req, item_id)
        given = read_json(req, self.config.max_json_body)["metadata"]
        send(resp, {"metadata": self._save(record, {**record.metadata, **given})})

    def on_put(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id = ids[self.param]
        record = self._record(req, item_id)
        given = read_json(req, self.config.max_json_body)["metadata"]
        send(resp, {"metadata": self._save(record, given)})

    def on_get_key(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id, key = ids[self.param], ids["key"]
        metadata = self._record(req, item_id).metadata
        if key not in metadata:
            raise NotFound(f"Metadata item was not found: {describe(key)}")
        send(resp, {"meta": {key: metadata[key]}})

    def on_put_key(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id, key = ids[self.param], ids["key"]
        record = self._record(req, item_id)
        given = read_json(req, self.config.max_json_body)["meta"]
        if list(given) != [key]:
            raise BadRequest("meta", "must have exactly one key, the one in the URL")
        self._save(record, {**record.metadata, **given})
        send(resp, {"meta": given})

    def on_delete_key(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        item_id, key = ids[self.param], ids["key"]
        record = self._record(req, item_id)
        if key not in record.metadata:
            raise NotFound(f"Metadata item was not found: {describe(key)}")
        self._save(record, {k: v for k, v in record.metadata.items() if k != key})
        resp.status = 200  # no body, as Cinder


class Snapshots:
    """GET /volume/v3/snapshots[/detail] (filters, sort, limit/marker), POST (202, creating → available or
    error; quotas snapshots, gigabytes)."""

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
        found = listing.page(req, self.store.snapshots.list(_scope(req, token)))
        send(resp, {"snapshots": [snapshot_view(s, detail) for s in found.items],
                    **listing.links(req, "snapshots", found)})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.config.max_json_body)["snapshot"]
        send(resp, {"snapshot": snapshot_view(self.create(token_of(req), body), detail=False)}, 202)

    def create(self, token: Token, body: dict[str, Any]) -> Snapshot:
        """Record the snapshot a validated create body's `snapshot` asks for and queue its copy (Nova's
        os-snapshots proxy creates through here too)."""
        volume = self.store.volume(token, body["volume_id"])
        # Before 3.66 (beyond this API's 3.60) Cinder copies an attached volume only when told to: force.
        if volume.status == IN_USE and not _forced(body.get("force")):
            raise invalid_volume(f"volume {volume.id} is in-use: snapshot it with force=True")
        now = time.time()
        common = _common(body)
        snapshot = self.store.add_snapshot(Snapshot(
            id=str(uuid.uuid4()), project_id=token.project_id, user_id=token.user_id, volume_id=volume.id,
            size=volume.size, created=now, updated=now, hypervisor=volume.hypervisor, **common),
            self.quotas.admission(VOLUME, {"snapshots": 1, "gigabytes": volume.size}))
        self.worker.snapshot(snapshot)
        return snapshot


class SnapshotItem:
    """GET, PUT (name, description) and DELETE /volume/v3/snapshots/{id}."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker):
        self.config = config
        self.store = store
        self.worker = worker

    def on_get(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        send(resp, {"snapshot": snapshot_view(self.store.snapshot(token_of(req), snapshot_id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        snapshot = self.store.snapshot(token_of(req), snapshot_id)
        changes = _update(read_json(req, self.config.max_json_body)["snapshot"], "snapshot")
        updated = self.store.change_snapshot(snapshot.id, **changes) or snapshot
        send(resp, {"snapshot": snapshot_view(updated, detail=False)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        snapshot = self.store.snapshot(token_of(req), snapshot_id)
        self.worker.delete_snapshot(self.store.start_delete_snapshot(snapshot))
        resp.status = 202


class SnapshotActions:
    """POST /volume/v3/snapshots/{id}/action: os-reset_status (admin), os-update_snapshot_status (creating →
    available or error, with progress), os-force_delete (admin)."""

    def __init__(self, config: ApiConfig, store: VolumeStore, worker: VolumeWorker):
        self.config = config
        self.store = store
        self.worker = worker

    def on_post(self, req: falcon.Request, resp: falcon.Response, snapshot_id: str) -> None:
        token = token_of(req)
        snapshot = self.store.snapshot(token, snapshot_id)
        # One action of api/openapi.yaml's list, its status one of the resettable ones.
        action, args = next(iter(read_json(req, self.config.max_json_body).items()))
        if action == "os-force_delete":
            require_admin(token, action)
            self.worker.delete_snapshot(self.store.start_delete_snapshot(snapshot, force=True))
        else:
            if action == "os-reset_status":
                require_admin(token, action)
            status = args["status"]
            if action == "os-update_snapshot_status" and not (
                    snapshot.status == CREATING and status in (AVAILABLE, ERROR)):
                raise BadRequest(f"{action}.status", f"Invalid snapshot: cannot go from {snapshot.status} to "
                                                     f"{status} (only creating to available or error)")
            progress = args.get("progress") if action == "os-update_snapshot_status" else None
            self.store.change_snapshot(snapshot.id, status=status,
                                       **({"progress": progress} if progress is not None else {}))
        resp.status = 202


# Cinder's API extensions whose behaviour this API serves: (alias, name, description). Tempest's
# volume-feature-enabled.api_extensions lists the same aliases (tests/conformance/tempest_conf.py).
EXTENSIONS = (
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Extended SnapshotAttributes support."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
)


class Extensions:
    """GET /volume/v3/extensions: the legacy extensions whose behaviour is served (EXTENSIONS)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token_of(req)
        send(resp, {"extensions": [{"alias": alias, "name": name, "description": description, "links": [],
                                    "updated": "2013-04-18T00:00:00+00:00"}
                                   for alias, name, description in EXTENSIONS]})


class AvailabilityZones:
    """GET /volume/v3/os-availability-zone: the zones of config.yaml's hypervisors, each available while one of its
    hypervisors is reachable."""

    def __init__(self, placement: VolumePlacement):
        self.placement = placement

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token_of(req)
        hosts = self.placement.hosts
        hosts.survey(hosts.hosts)
        send(resp, {"availabilityZoneInfo": [
            {"zoneName": zone, "zoneState": {"available": any(hosts.is_up(h) for h in members)}}
            for zone, members in hosts.zones().items()]})
