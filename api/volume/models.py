"""Cinder's records: volumes and snapshots (per project), and their statuses."""

from __future__ import annotations

from dataclasses import dataclass, field

CREATING, AVAILABLE, ATTACHING, IN_USE, DETACHING = "creating", "available", "attaching", "in-use", "detaching"
DELETING, ERROR, ERROR_DELETING = "deleting", "error", "error_deleting"
EXTENDING, ERROR_EXTENDING = "extending", "error_extending"
AWAITING_TRANSFER = "awaiting-transfer"  # offered to another project (api.volume.transfers)
UPLOADING = "uploading"  # its data being copied into an image (api.volume.upload)
MAINTENANCE = "maintenance"  # only ever set by an admin's os-reset_status
GIB = 1 << 30


@dataclass(frozen=True)
class Volume:
    """A volume, its workspace `vol-<id>`, and its attachment (one server at most: no multiattach)."""

    id: str
    name: str
    project_id: str
    user_id: str
    size: int  # GiB
    status: str = CREATING
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    server_id: str | None = None
    device: str | None = None  # /dev/vdb, …
    attached_at: float = 0.0
    fault: str | None = None  # the last failure's reason, kept on the record only (users read a user message)
    created: float = 0.0
    updated: float = 0.0
    volume_type: str = "__DEFAULT__"  # its type's name (api.volume.types)
    # What it was filled from: at most one of a snapshot, another volume, an image (none: blank).
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_id: str | None = None
    image_file: str | None = None  # the image version's file the volume copies (not shown)
    image_format: str = "qcow2"  # that file's format, as the image store found it (raw: converted first)
    image_metadata: dict[str, str] = field(default_factory=dict)  # volume_image_metadata
    bootable: bool = False
    extending_to: int = 0  # GiB, while status is extending
    group_id: str | None = None  # the group it is in (api.volume.groups)
    scheduled: bool = True  # False: no backend would take it (api.volume.backend), it never got a host
    # An attachment Cinder only records (os-attach: the caller, not Nova here, connects the disk), kept apart
    # from Nova's server_id so that no server's domain ever gets the volume as a disk from it.
    recorded_id: str | None = None  # its attachment_id
    recorded_server: str | None = None  # instance_uuid
    recorded_host: str | None = None  # host_name
    recorded_mountpoint: str | None = None
    recorded_mode: str = "rw"
    recorded_at: float = 0.0
    # The configured hypervisor whose pool holds it (api.volume.placement; "" on a record from before: the first)
    # and that hypervisor's availability zone.
    hypervisor: str = ""
    availability_zone: str = "nova"

    @property
    def workspace(self) -> str:
        """Its workspace (and libvirt volume) name."""
        return f"vol-{self.id}"

    @property
    def attached(self) -> bool:
        """Attached to its server by Nova (an attach in progress or failed is not yet)."""
        return self.server_id is not None and self.status in (IN_USE, DETACHING)

    @property
    def recorded(self) -> bool:
        """Has an attachment recorded by os-attach (whatever its status since: os-reset_status keeps it)."""
        return self.recorded_id is not None

    @property
    def target(self) -> str | None:
        """The guest disk it is attached as (vdb, …)."""
        return self.device.rsplit("/", 1)[-1] if self.device else None


@dataclass(frozen=True)
class RecordedAttach:
    """What os-attach records: an attachment made by its caller, Cinder only keeps the record."""

    attachment_id: str
    instance_uuid: str | None
    host_name: str | None
    mountpoint: str
    mode: str  # rw or ro


@dataclass(frozen=True)
class Snapshot:
    """A copy of a volume's content taken at creation, in its own workspace `snap-<id>`."""

    id: str
    name: str
    project_id: str
    user_id: str
    volume_id: str
    size: int  # GiB
    status: str = CREATING
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # the last failure's reason, kept on the record only (users read a user message)
    created: float = 0.0
    updated: float = 0.0
    progress: str | None = None  # as os-update_snapshot_status last set it (None: 0% until available, then 100%)
    group_snapshot_id: str | None = None  # the group snapshot it is part of (api.volume.group_snapshots)
    hypervisor: str = ""  # its volume's, where its copy is made ("" on a record from before: the first)

    @property
    def workspace(self) -> str:
        """Its workspace (and libvirt volume) name."""
        return f"snap-{self.id}"
