"""Boot from volume: a create request's block device mappings (block_device_mapping_v2, or the legacy
block_device_mapping) as Cinder volumes of the new server.

Each mapping whose destination is a volume becomes one: an existing volume (source_type volume) is reserved
for the server at once; one made from an image, a snapshot or nothing (blank) is created through this API's
Cinder and reserved once it is available, when the server's build starts. The mapping with boot_index 0 is
the guest's system disk (vda: DomainSpec.root_volume), the others its next disks (vdb, …). The build marks
them in use; the server's delete deletes those with delete_on_termination (the others are detached and
outlive it). An image mapped to a local disk with boot_index 0 is an ordinary image boot (ServerBuilder); a
blank one mapped to a local disk is an ephemeral disk, a blank qcow2 disk of the domain's own (DomainSpec.extra_disks,
not formatted: Nova mkfs's it on the host), within the flavor's ephemeral GiB (`local_disks`).

A volume-backed server's createImage (api.compute.snapshots) is Nova's: a Cinder snapshot of each of its volumes
(`snapshot_mappings`) named in the image's `block_device_mapping` property; booting that image (`with_image`)
maps those snapshots to new volumes, as the request's own mappings would.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from collections.abc import Callable
from typing import Any, TypeVar

from api.compute.models import ComputeStore, Server
from api.compute.tasks import ServerTasks
from api.errors import ApiError, BadRequest
from api.image.catalog import ImageCatalog
from api.identity.tokens import Token
from api.volume import microversion as cinder_version
from api.volume.models import AVAILABLE, ATTACHING, CREATING, GIB, IN_USE, Volume
from api.volume.resources import Snapshots, Volumes
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker
from provisioner.errors import ProvisionError
from provisioner.excerpt import cut, describe
from provisioner.spec.model import DomainSpec, ExtraDisk
from provisioner.volumes import attachment

log = logging.getLogger(__name__)

SOURCES = ("volume", "image", "snapshot", "blank")
DESTINATIONS = ("local", "volume")
MAX_MAPPINGS = 26  # a guest has vda … vdz
LETTERS = "abcdefghijklmnopqrstuvwxyz"
WAIT_POLLS, WAIT_POLL = 600, 0.5  # how long a build waits for its volumes to be created (5 min)
INVALID = "Block Device Mapping is Invalid"
BOOT_SEQUENCE = f"{INVALID}: Boot sequence for the instance and image/block device mapping combination is not valid."
TRUE, FALSE = ("true", "1", "yes", "on", "t", "y"), ("false", "0", "no", "off", "f", "n")


@dataclass(frozen=True)
class BlockDevice:
    """One mapping, checked: where it is in the request (`where`, for errors) and what it asks for."""

    where: str
    source_type: str
    destination_type: str
    uuid: str | None
    boot_index: int | None  # None or negative: not bootable
    volume_size: int | None
    delete_on_termination: bool
    guest_format: str | None = None  # swap: a swap disk (local blank mappings only)

    @property
    def boot(self) -> bool:
        """The system disk's mapping."""
        return self.boot_index == 0

    @property
    def local_blank(self) -> bool:
        """An ephemeral or swap disk of the guest's own (Nova's blank mapping to a local destination)."""
        return self.source_type == "blank" and self.destination_type == "local"


def _integer(value: Any, where: str, what: str) -> int | None:
    """An integer given as a number or decimal text (Nova accepts both), or None."""
    if value is None:
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 10:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadRequest(where, f"{describe(value)} is not {what}")


def _boolean(value: Any, where: str) -> bool:
    """Nova's boolean parameter: a boolean or its text."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise BadRequest(where, f"{describe(value)} is not a boolean")


def _v2(entry: Any, where: str) -> BlockDevice:
    if not isinstance(entry, dict):
        raise BadRequest(where, "must be an object")
    source = entry.get("source_type")
    if source not in SOURCES:
        raise BadRequest(f"{where}.source_type", f"{INVALID}: {describe(source)} is not one of {', '.join(SOURCES)}")
    destination = entry.get("destination_type")
    if destination is None:
        destination = "local" if source in ("image", "blank") else "volume"
    if destination not in DESTINATIONS:
        raise BadRequest(f"{where}.destination_type",
                         f"{INVALID}: {describe(destination)} is not one of {', '.join(DESTINATIONS)}")
    uuid = entry.get("uuid")
    if source != "blank" and (not isinstance(uuid, str) or not uuid or len(uuid) > 255):
        raise BadRequest(f"{where}.uuid", f"{INVALID}: a {source} mapping needs the {source}'s id")
    size = _integer(entry.get("volume_size"), f"{where}.volume_size", "an integer")
    if size is not None and size < 0:
        raise BadRequest(f"{where}.volume_size", f"{size} is not a size in GiB")
    guest_format = entry.get("guest_format")
    if guest_format is not None and (not isinstance(guest_format, str) or len(guest_format) > 255):
        raise BadRequest(f"{where}.guest_format", f"{INVALID}: {describe(guest_format)} is not a format name")
    return BlockDevice(where, source, destination, uuid if source != "blank" else None,
                       _integer(entry.get("boot_index"), f"{where}.boot_index", "an integer"), size,
                       _boolean(entry.get("delete_on_termination"), f"{where}.delete_on_termination"),
                       guest_format)


def _legacy(entry: Any, where: str) -> BlockDevice:
    """A legacy mapping: a volume (volume_id) or snapshot (snapshot_id) at device_name (vda: the boot disk)."""
    if not isinstance(entry, dict):
        raise BadRequest(where, "must be an object")
    device = entry.get("device_name")
    if device is not None and not isinstance(device, str):
        raise BadRequest(f"{where}.device_name", f"{describe(device)} is not a device name")
    source, key = ("snapshot", "snapshot_id") if entry.get("snapshot_id") else ("volume", "volume_id")
    uuid = entry.get(key)
    if not isinstance(uuid, str) or not uuid or len(uuid) > 255:
        raise BadRequest(f"{where}.{key}", f"{INVALID}: a legacy mapping needs a volume_id or a snapshot_id")
    boot = (device or "").rsplit("/", 1)[-1] in ("vda", "sda", "xvda")
    return BlockDevice(where, source, "volume", uuid, 0 if boot else None,
                       _integer(entry.get("volume_size"), f"{where}.volume_size", "an integer"),
                       _boolean(entry.get("delete_on_termination"), f"{where}.delete_on_termination"))


def parse(body: dict[str, Any]) -> list[BlockDevice]:
    """The mappings of a `server` body, checked as Nova checks them before it looks anything up."""
    if body.get("block_device_mapping_v2") is not None and body.get("block_device_mapping") is not None:
        raise BadRequest("server.block_device_mapping", f"{INVALID}: give block_device_mapping_v2 or the legacy "
                                                        "block_device_mapping, not both")
    key = "block_device_mapping_v2" if body.get("block_device_mapping") is None else "block_device_mapping"
    entries = body.get(key) or []
    if not isinstance(entries, list):
        raise BadRequest(f"server.{key}", "must be a list")
    if len(entries) > MAX_MAPPINGS:
        raise BadRequest(f"server.{key}", f"at most {MAX_MAPPINGS} mappings")
    read = _v2 if key == "block_device_mapping_v2" else _legacy
    devices = [read(entry, f"server.{key}[{index}]") for index, entry in enumerate(entries)]
    for device in devices:
        if device.destination_type == "local" and not (device.source_type == "image" and device.boot) and not (
                device.local_blank and not device.boot):
            raise BadRequest(f"{device.where}.destination_type",
                             f"{INVALID}: a local disk is the boot image, or a blank ephemeral or swap disk (map the "
                             "others to volumes)")
        if device.source_type == "blank" and device.destination_type == "volume" and not device.volume_size:
            raise BadRequest(f"{device.where}.volume_size", f"{INVALID}: a blank volume needs a volume_size")
    boots = sorted(d.boot_index for d in devices if d.boot_index is not None and d.boot_index >= 0)
    # No mapping and no image is the builder's 400 (server.imageRef is required).
    if devices and (boots != list(range(len(boots))) or (not body.get("imageRef") and 0 not in boots)):
        raise BadRequest(f"server.{key}", BOOT_SEQUENCE)
    return devices


def _image_entry(entry: Any, where: str) -> BlockDevice:
    """One mapping of an image's block_device_mapping property: Nova's stored form, whose source is named by
    snapshot_id, volume_id or image_id rather than uuid."""
    if not isinstance(entry, dict):
        raise BadRequest(where, "must be an object")
    source = entry.get("source_type")
    return _v2({**entry, "uuid": entry.get(f"{source}_id") if source in SOURCES else None}, where)


def image_devices(image_id: str, properties: dict[str, str]) -> list[BlockDevice]:
    """The mappings an image's properties define (Nova's bdm_v2 block_device_mapping, a JSON list), checked as
    a request's are; none without them."""
    text = properties.get("block_device_mapping")
    if not text or str(properties.get("bdm_v2", "")).lower() not in TRUE:
        return []
    where = f"image {image_id} block_device_mapping"
    try:
        entries = json.loads(text)
    except ValueError:
        raise BadRequest("server.imageRef", f"{INVALID}: {where} is not JSON") from None
    if not isinstance(entries, list) or len(entries) > MAX_MAPPINGS:
        raise BadRequest("server.imageRef", f"{INVALID}: {where} must be a list of at most {MAX_MAPPINGS}")
    return [_image_entry(entry, f"{where}[{index}]") for index, entry in enumerate(entries)]


def merge(requested: list[BlockDevice], from_image: list[BlockDevice]) -> list[BlockDevice]:
    """The image's mappings, then the request's, which win: a request's boot mapping replaces the image's
    (Nova keeps the request's over an image's mapping of the same device)."""
    ours = any(d.boot for d in requested)
    return [d for d in from_image if not (ours and d.boot)] + requested


def local_disks(devices: list[BlockDevice], ephemeral_gb: int) -> list[int]:
    """The sizes in GiB of the ephemeral disks the mappings ask for, checked as Nova's _validate_bdm checks them
    against the flavor (its `ephemeral` GiB; this API's flavors have no swap): a size not given is the
    flavor's; a swap disk of no size is none."""
    swaps = [d for d in devices if d.local_blank and d.guest_format == "swap"]
    if len(swaps) > 1:
        raise BadRequest(swaps[1].where, f"{INVALID}: More than one swap drive requested.")
    if swaps and swaps[0].volume_size:
        raise BadRequest(f"{swaps[0].where}.volume_size", "Swap drive requested is larger than instance type "
                                                          "allows.")
    ephemerals = [d for d in devices if d.local_blank and d.guest_format != "swap"]
    sizes = [d.volume_size if d.volume_size is not None else ephemeral_gb for d in ephemerals]
    if sum(sizes) > ephemeral_gb:
        raise BadRequest(ephemerals[0].where, "Ephemeral disks requested are larger than the instance type allows. "
                                              "If no size is given in one block device mapping, flavor ephemeral "
                                              "size will be used.")
    for device, size in zip(ephemerals, sizes, strict=True):
        if size < 1:
            raise BadRequest(f"{device.where}.volume_size", f"{INVALID}: an ephemeral disk needs a size (the "
                                                            "flavor has no ephemeral disk)")
    return sizes


def volume_boot(devices: list[BlockDevice]) -> bool:
    """The system disk is a volume."""
    return any(d.boot and d.destination_type == "volume" for d in devices)


T = TypeVar("T")


def _source(device: BlockDevice, kind: str, lookup: Callable[[str], T]) -> T:
    """The mapping's source looked up by its uuid; Nova's 400 naming `<where>.uuid` if it cannot be had."""
    try:
        return lookup(device.uuid or "")
    except ApiError:
        raise BadRequest(f"{device.where}.uuid",
                         f"{INVALID}: failed to get {kind} {cut(device.uuid or '')}.") from None


class BlockDevices:
    """Looks up, creates, reserves and releases the volumes of servers' block device mappings."""

    def __init__(self, compute: ComputeStore, volumes: VolumeStore, worker: VolumeWorker, images: ImageCatalog,
                 tasks: ServerTasks):
        self.compute = compute
        self.volumes = volumes
        self.worker = worker
        self.images = images
        tasks.before_build.append(self.before_build)
        tasks.after_build.append(self.after_build)
        tasks.on_destroyed.append(self.destroyed)
        # Cinder's volumes and snapshots collections, which create the mapped volumes and a volume-backed
        # server's snapshots: set once Cinder's routes are mounted (after Nova's).
        self.cinder: Volumes | None = None
        self.snapshots: Snapshots | None = None

    def with_image(self, token: Token, body: dict[str, Any], devices: list[BlockDevice]) -> list[BlockDevice]:
        """The request's mappings merged with those its imageRef's image defines (a volume-backed server's
        snapshot); the request's alone if the image defines none (or cannot be had: the builder says why)."""
        image_id = body.get("imageRef")
        if not isinstance(image_id, str) or not image_id:
            return devices
        try:
            image = self.images.get(token, image_id)
        except ApiError:
            return devices
        return merge(devices, image_devices(image.id, image.row.properties if image.row else {}))

    def snapshot_mappings(self, token: Token, server: Server, image_name: str) -> list[dict[str, Any]]:
        """Nova's snapshot of a volume-backed server: a Cinder snapshot of each volume attached to it (forced:
        they are in use), and for each the image mapping (Nova's stored form) that makes a new volume of it."""
        if self.snapshots is None:
            raise BadRequest("createImage", "volumes cannot be snapshotted: Cinder is not served")
        keep = {r["volume_id"]: r["delete_on_termination"] for r in server.block_devices}
        attached = sorted((v for v in self.volumes.volumes.list() if v.server_id == server.id and v.device),
                          key=lambda v: (v.id != server.root_volume, v.device or ""))
        mappings = []
        for volume in attached:
            snapshot = self.snapshots.create(token, {"volume_id": volume.id, "force": True,
                                                     "name": f"snapshot for {image_name}",
                                                     "description": volume.description})
            mappings.append({
                "source_type": "snapshot", "destination_type": "volume", "snapshot_id": snapshot.id,
                "volume_id": None, "image_id": None, "volume_size": volume.size,
                "boot_index": 0 if volume.id == server.root_volume else None, "device_name": volume.device,
                "delete_on_termination": keep.get(volume.id, False), "disk_bus": "virtio", "device_type": "disk",
                "guest_format": None, "volume_type": None, "no_device": None, "tag": None})
        return mappings

    def check(self, token: Token, devices: list[BlockDevice], count: int) -> str | None:
        """What Nova's API checks before it creates anything: each source exists (400 otherwise), a volume is
        available (and bootable, to boot from), one volume is not given to several servers. The hypervisor the
        mapped volumes and snapshots are on, where the server must go (None: they name none); 400 if they are on
        several."""
        placement = self.worker.placement
        on: tuple[str, str] | None = None  # (hypervisor, what is there)
        for device in devices:
            if device.destination_type != "volume":
                continue
            if device.source_type == "volume":
                if count > 1:
                    raise BadRequest(device.where, "Cannot attach one or more volumes to multiple instances")
                volume = _source(device, "volume", lambda uuid: self.volumes.volume(token, uuid))
                if volume.status != AVAILABLE:
                    raise BadRequest(f"{device.where}.uuid", f"Invalid volume: volume {volume.id} status must be "
                                                             f"available, but current status is: {volume.status}")
                if device.boot and not volume.bootable:
                    raise BadRequest(f"{device.where}.uuid", f"Block Device {volume.id} is not bootable.")
                here = (placement.name_of(volume.hypervisor), f"volume {volume.id}")
            elif device.source_type == "snapshot":
                snapshot = _source(device, "snapshot", lambda uuid: self.volumes.snapshot(token, uuid))
                here = (placement.name_of(snapshot.hypervisor), f"snapshot {snapshot.id}")
            else:
                if device.source_type == "image":
                    _source(device, "image", lambda uuid: self.images.record(token, uuid))
                continue
            if on is not None and on[0] != here[0]:
                raise BadRequest(f"{device.where}.uuid", f"{INVALID}: {here[1]} is on hypervisor {here[0]} and "
                                                         f"{on[1]} on {on[0]}: a server's volumes must be on one "
                                                         "hypervisor (its own)")
            on = on or here
        return on[0] if on else None

    def provide(self, token: Token, server: Server, spec: DomainSpec, devices: list[BlockDevice],
                ephemeral_gib: tuple[int, ...] = ()) -> tuple[Server, DomainSpec]:
        """Reserve or create the server's volumes; the server's record with them, and its spec with its disks:
        first its ephemeral disks of `ephemeral_gib` (local_disks: blank qcow2 disks of the domain's own, gone
        with it), then the volumes. An ApiError (a volume taken meanwhile, a quota) leaves what was reserved to
        the server's delete."""
        records: list[dict[str, Any]] = []
        disks = []
        root = None
        spec = replace(spec, extra_disks=(*spec.extra_disks, *(ExtraDisk(size * GIB) for size in ephemeral_gib)))
        names = iter(f"/dev/vd{letter}" for letter in LETTERS[1 + len(spec.extra_disks):])
        for device in [d for d in devices if d.destination_type == "volume"]:
            name = "/dev/vda" if device.boot else next(names)
            if device.source_type == "volume":
                self._same_hypervisor(server, device.uuid or "")
                volume = self.volumes.reserve(device.uuid or "", server.id, [name], name)
            else:
                volume = self._create(token, device, server.hypervisor or None)
            records.append({"volume_id": volume.id, "device": name,
                            "delete_on_termination": device.delete_on_termination})
            target = attachment(volume.workspace, name.rsplit("/", 1)[-1])
            if device.boot:
                root = volume.id
                spec = replace(spec, root_volume=target)
            else:
                disks.append(target)
            saved = self.compute.change(server.id, root_volume=root, block_devices=tuple(records))
            server = saved or server
        return server, replace(spec, volumes=(*spec.volumes, *disks))

    def _same_hypervisor(self, server: Server, volume_id: str) -> None:
        """BadRequest unless the volume is on the server's hypervisor (placement put it there, unless an admin
        forced another host)."""
        volume = self.volumes.volumes.get(volume_id)
        placement = self.worker.placement
        where, there = placement.name_of(volume.hypervisor) if volume else "", placement.hosts.of(server).name
        if volume is not None and where != there:
            raise BadRequest("", f"{INVALID}: volume {volume.id} is on hypervisor {where}, the server on {there}")

    def _create(self, token: Token, device: BlockDevice, on: str | None) -> Volume:
        """A new volume from the mapping's image, snapshot or nothing, through Cinder's own create, on the server's
        hypervisor `on`."""
        if self.cinder is None:
            raise BadRequest(device.where, "volumes cannot be created: Cinder is not served")
        body: dict[str, Any] = {"name": "", "size": device.volume_size or None}
        if device.source_type == "image":
            body["imageRef"] = device.uuid
        elif device.source_type == "snapshot":
            body["snapshot_id"] = device.uuid
        try:
            return self.cinder.create(token, body, cinder_version.MIN, on)
        except BadRequest as exc:
            raise BadRequest(device.where, f"{INVALID}: {exc.message}") from None

    def before_build(self, spec: DomainSpec) -> None:
        """ServerTasks.before_build: wait until the server's new volumes are created, then reserve them;
        ProvisionError if one failed (or is still being created after WAIT_POLLS polls)."""
        server = self.compute.servers.get(spec.name.removeprefix("srv-"))
        if server is None:
            return
        for record in server.block_devices:
            volume = self.volumes.volumes.get(record["volume_id"])
            for _ in range(WAIT_POLLS):
                if volume is None or volume.status != CREATING:
                    break
                time.sleep(WAIT_POLL)
                volume = self.volumes.volumes.get(record["volume_id"])
            if volume is None:
                raise ProvisionError(f"Volume {record['volume_id']} of the server's block device mapping is gone")
            if volume.server_id == server.id:
                continue  # reserved already (an existing volume, or a build resumed after a restart)
            if volume.status != AVAILABLE:
                raise ProvisionError(f"Volume {volume.id} did not finish being created: its status is "
                                     f"{volume.status}")
            try:
                self.volumes.reserve(volume.id, server.id, [record["device"]], record["device"])
            except ApiError as exc:
                raise ProvisionError(f"Volume {volume.id} could not be reserved: {exc.message}") from None

    def after_build(self, server_id: str) -> None:
        """ServerTasks.after_build: the server's mapped volumes are in use."""
        server = self.compute.servers.get(server_id)
        for record in server.block_devices if server else ():
            volume = self.volumes.volumes.get(record["volume_id"])
            if volume is not None and volume.server_id == server_id and volume.status == ATTACHING:
                self.volumes.change(volume.id, status=IN_USE)

    def destroyed(self, server_id: str) -> None:
        """ServerTasks.on_destroyed: delete the volumes mapped with delete_on_termination, as Nova's
        _cleanup_volumes does (the others are released by api.compute.attachments), also one made for its
        build and never reserved because the build failed first, which nothing else would ever delete."""
        server = self.compute.servers.get(server_id)
        for record in server.block_devices if server else ():
            volume = self.volumes.volumes.get(record["volume_id"])
            if not record["delete_on_termination"] or volume is None:
                continue
            # Attached to it still (hooks run before api.compute.attachments releases the server's volumes).
            if volume.server_id == server_id:
                self.volumes.release(volume.id)
            elif volume.server_id is not None or volume.recorded:
                continue  # another server's (or os-attach's) since: not this server's to delete
            try:
                self.worker.delete(self.volumes.start_delete(volume))
            except ApiError as exc:  # it has snapshots, say: Nova too leaves it (available) and logs why
                log.warning("volume %s of deleted server %s is kept: %s", volume.id, server_id, exc.message)

    def delete_on_termination(self, server: Server, volume_id: str) -> bool:
        """Whether the server's mapping of this volume deletes it with the server."""
        return any(r["volume_id"] == volume_id and r["delete_on_termination"] for r in server.block_devices)
