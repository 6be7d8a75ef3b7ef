"""Boot from volume: a create request's block device mappings (block_device_mapping_v2, or the legacy
block_device_mapping) as Cinder volumes of the new server.

Each mapping whose destination is a volume becomes one: an existing volume (source_type volume) is reserved
for the server at once; one made from an image, a snapshot or nothing (blank) is created through this API's
Cinder and reserved once it is available, when the server's build starts. The mapping with boot_index 0 is
the guest's system disk (vda: DomainSpec.root_volume), the others its next disks (vdb, …). The build marks
them in use; the server's delete deletes those with delete_on_termination (the others are detached and
outlive it). An image mapped to a local disk with boot_index 0 is an ordinary image boot (ServerBuilder).
"""

from __future__ import annotations

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
from api.volume.models import AVAILABLE, ATTACHING, CREATING, IN_USE, Volume
from api.volume.resources import Volumes
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker
from provisioner.errors import ProvisionError
from provisioner.excerpt import cut, describe
from provisioner.spec.model import DomainSpec
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

    @property
    def boot(self) -> bool:
        """The system disk's mapping."""
        return self.boot_index == 0


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
    return BlockDevice(where, source, destination, uuid if source != "blank" else None,
                       _integer(entry.get("boot_index"), f"{where}.boot_index", "an integer"), size,
                       _boolean(entry.get("delete_on_termination"), f"{where}.delete_on_termination"))


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
        if device.destination_type == "local" and not (device.source_type == "image" and device.boot):
            raise BadRequest(f"{device.where}.destination_type",
                             f"{INVALID}: only the boot image can be a local disk here (map the others to volumes)")
        if device.source_type == "blank" and device.destination_type == "volume" and not device.volume_size:
            raise BadRequest(f"{device.where}.volume_size", f"{INVALID}: a blank volume needs a volume_size")
    boots = sorted(d.boot_index for d in devices if d.boot_index is not None and d.boot_index >= 0)
    # No mapping and no image is the builder's 400 (server.imageRef is required).
    if devices and (boots != list(range(len(boots))) or (not body.get("imageRef") and 0 not in boots)):
        raise BadRequest(f"server.{key}", BOOT_SEQUENCE)
    return devices


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
        # Cinder's volumes collection, which creates the mapped volumes: set once Cinder's routes are mounted
        # (after Nova's).
        self.cinder: Volumes | None = None

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

    def provide(self, token: Token, server: Server, spec: DomainSpec,
                devices: list[BlockDevice]) -> tuple[Server, DomainSpec]:
        """Reserve or create the server's volumes; the server's record with them, and its spec with its disks.
        An ApiError (a volume taken meanwhile, a quota) leaves what was reserved to the server's delete."""
        records: list[dict[str, Any]] = []
        disks = []
        root = None
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
        """ServerTasks.on_destroyed: delete the volumes mapped with delete_on_termination (the others are
        released by api.compute.attachments)."""
        server = self.compute.servers.get(server_id)
        for record in server.block_devices if server else ():
            volume = self.volumes.volumes.get(record["volume_id"])
            # Attached to it still (hooks run before api.compute.attachments releases the server's volumes).
            if not record["delete_on_termination"] or volume is None or volume.server_id != server_id:
                continue
            self.volumes.release(volume.id)
            try:
                self.worker.delete(self.volumes.start_delete(volume))
            except ApiError as exc:  # it has snapshots, say: Nova too leaves it (available) and logs why
                log.warning("volume %s of deleted server %s is kept: %s", volume.id, server_id, exc.message)

    def delete_on_termination(self, server: Server, volume_id: str) -> bool:
        """Whether the server's mapping of this volume deletes it with the server."""
        return any(r["volume_id"] == volume_id and r["delete_on_termination"] for r in server.block_devices)
