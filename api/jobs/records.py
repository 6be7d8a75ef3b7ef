"""Job records: one frozen dataclass per kind of work, each with its subject and its codec to the args JSON.

A job acts on one subject (a server, a volume, a snapshot, …: `Subject`);
one subject's jobs run in submission order. A record stores what its
handler needs beyond the subject as the `args` JSON of its queue row, so a
job queued by one API version runs in the next: `kind` strings and args
keys are a stored format (these are the ones `api_server_tasks` held).
`decode` is the one place a stored kind is mapped back to its record type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from provisioner.excerpt import cut
from provisioner.spec.codec import spec_from_json
from provisioner.spec.model import DomainSpec, ImageRef

SERVER, VOLUME, SNAPSHOT = "server", "volume", "snapshot"
POWER_ACTIONS = ("stop", "start", "reboot", "hard-reboot", "pause", "unpause")


class JobFormatError(ValueError):
    """A queue row's kind or args do not make a job record (written by another version, or damaged)."""


@dataclass(frozen=True)
class Subject:
    """What a job acts on: a kind of object (server, volume, snapshot) and its id."""

    kind: str
    id: str


@dataclass(frozen=True)
class Job:
    """A unit of work on one subject; subclasses name their `kind`, the kind of their subject, and its id field."""

    kind: ClassVar[str]
    subject_kind: ClassVar[str]

    @property
    def subject(self) -> Subject:
        """The object this job acts on."""
        raise NotImplementedError

    def to_args(self) -> dict[str, Any]:
        """The args JSON of its queue row (what it needs beyond its subject)."""
        return {}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> Job:
        """The record from its subject's id and its row's args; JobFormatError if they do not fit."""
        return cls(subject_id)  # type: ignore[call-arg]  # the subject-only records


def _text(args: dict[str, Any], key: str, kind: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise JobFormatError(f"{kind} job: args.{key} must be a string, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class ServerJob(Job):
    """A job on a server."""

    subject_kind: ClassVar[str] = SERVER
    server_id: str

    @property
    def subject(self) -> Subject:
        return Subject(SERVER, self.server_id)


@dataclass(frozen=True)
class BuildServer(ServerJob):
    """Provision the server's domain from its spec (re-running it re-converges the same spec)."""

    kind: ClassVar[str] = "build"
    spec: DomainSpec

    def to_args(self) -> dict[str, Any]:
        return {"spec": self.spec.to_json()}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> BuildServer:
        if not isinstance(args.get("spec"), dict):
            raise JobFormatError("build job: args.spec must be an object")
        try:
            return cls(subject_id, spec_from_json(args["spec"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise JobFormatError(f"build job: args.spec is not a domain spec ({type(exc).__name__})") from None


@dataclass(frozen=True)
class DeleteServer(ServerJob):
    """Destroy the server's domain, then forget the server."""

    kind: ClassVar[str] = "delete"
    domain: str
    uri: str | None = None  # the server's hypervisor (jobs queued before it was recorded have none)

    def to_args(self) -> dict[str, Any]:
        return {"domain": self.domain, "uri": self.uri}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> DeleteServer:
        uri = None if args.get("uri") is None else _text(args, "uri", cls.kind)
        return cls(subject_id, _text(args, "domain", cls.kind), uri)


@dataclass(frozen=True)
class PowerAction(ServerJob):
    """One of POWER_ACTIONS on the server's domain at `uri`."""

    kind: ClassVar[str] = "power"
    uri: str
    domain: str
    action: str

    def __post_init__(self) -> None:
        if self.action not in POWER_ACTIONS:
            raise JobFormatError(f"power job: unknown action {cut(self.action)}")

    def to_args(self) -> dict[str, Any]:
        return {"uri": self.uri, "domain": self.domain, "action": self.action}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> PowerAction:
        return cls(subject_id, _text(args, "uri", cls.kind), _text(args, "domain", cls.kind),
                   _text(args, "action", cls.kind))


@dataclass(frozen=True)
class ConvergeVolumes(ServerJob):
    """Re-apply the server's domain with the volumes attached to it at that moment (attach and detach)."""

    kind: ClassVar[str] = "volumes"


@dataclass(frozen=True)
class SyncFirewall(ServerJob):
    """Redefine the server's port filters from its security groups' rules as they are when it runs."""

    kind: ClassVar[str] = "firewall"


@dataclass(frozen=True)
class ResizeServer(ServerJob):
    """Re-apply the server's domain with a flavor's vCPUs and RAM: a resize, or (`revert`) its undoing."""

    kind: ClassVar[str] = "resize"
    flavor_id: str
    revert: bool = False

    def to_args(self) -> dict[str, Any]:
        return {"flavor_id": self.flavor_id, "revert": self.revert}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> ResizeServer:
        revert = args.get("revert", False)
        if not isinstance(revert, bool):
            raise JobFormatError(f"resize job: args.revert must be a boolean, not {type(revert).__name__}")
        return cls(subject_id, _text(args, "flavor_id", cls.kind), revert)


@dataclass(frozen=True)
class RebuildServer(ServerJob):
    """Re-apply the server's domain on a new image (a new root disk), with the admin user's password hash if
    one was given; the rest of the spec (NICs, volumes, users' keys) stays, unless `guest_data`: then the
    users, keys and user data come anew from the server record's key pair and user data (2.54 / 2.57)."""

    kind: ClassVar[str] = "rebuild"
    image: ImageRef
    password_hash: str | None = None
    stopped: bool = False  # a stopped server is stopped again after the re-apply, as Nova keeps it
    guest_data: bool = False

    def to_args(self) -> dict[str, Any]:
        image = {"source": self.image.source, "format": self.image.format, "digest": self.image.digest,
                 "slug": self.image.slug}
        return {"image": image, "password_hash": self.password_hash, "stopped": self.stopped,
                "guest_data": self.guest_data}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> RebuildServer:
        image = args.get("image")
        if not isinstance(image, dict):
            raise JobFormatError("rebuild job: args.image must be an object")
        password, stopped = args.get("password_hash"), args.get("stopped", False)
        guest_data = args.get("guest_data", False)
        if password is not None and not isinstance(password, str):
            raise JobFormatError("rebuild job: args.password_hash must be a string or null")
        for name, value in (("stopped", stopped), ("guest_data", guest_data)):
            if not isinstance(value, bool):
                raise JobFormatError(f"rebuild job: args.{name} must be a boolean, not {type(value).__name__}")
        ref = ImageRef(*(_text(image, key, cls.kind) for key in ("source", "format", "digest", "slug")))
        return cls(subject_id, ref, password, stopped, guest_data)


@dataclass(frozen=True)
class ImageServer(ServerJob):
    """Copy the server's root disk into the Glance image `image_id` (createImage, or createBackup with its
    backup_type and rotation: the oldest backups of that type beyond `rotation` are deleted once it is active)."""

    kind: ClassVar[str] = "server-image"
    image_id: str
    backup_type: str | None = None
    rotation: int | None = None

    def to_args(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "backup_type": self.backup_type, "rotation": self.rotation}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> ImageServer:
        backup_type, rotation = args.get("backup_type"), args.get("rotation")
        if backup_type is not None and not isinstance(backup_type, str):
            raise JobFormatError("server-image job: args.backup_type must be a string or null")
        if rotation is not None and (isinstance(rotation, bool) or not isinstance(rotation, int) or rotation < 0):
            raise JobFormatError("server-image job: args.rotation must be a non-negative integer or null")
        return cls(subject_id, _text(args, "image_id", cls.kind), backup_type, rotation)


@dataclass(frozen=True)
class VolumeJob(Job):
    """A job on a volume."""

    subject_kind: ClassVar[str] = VOLUME
    volume_id: str

    @property
    def subject(self) -> Subject:
        return Subject(VOLUME, self.volume_id)


@dataclass(frozen=True)
class CreateVolume(VolumeJob):
    """Apply a blank volume's workspace."""

    kind: ClassVar[str] = "volume-create"


@dataclass(frozen=True)
class DeleteVolume(VolumeJob):
    """Destroy a volume's workspace, then forget the volume."""

    kind: ClassVar[str] = "volume-delete"


@dataclass(frozen=True)
class UploadVolumeImage(VolumeJob):
    """Copy a volume's data into the Glance image `image_id`, as `disk_format` (os-volume_upload_image)."""

    kind: ClassVar[str] = "volume-upload-image"
    image_id: str
    disk_format: str

    def to_args(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "disk_format": self.disk_format}

    @classmethod
    def from_args(cls, subject_id: str, args: dict[str, Any]) -> UploadVolumeImage:
        return cls(subject_id, _text(args, "image_id", cls.kind), _text(args, "disk_format", cls.kind))


@dataclass(frozen=True)
class SnapshotJob(Job):
    """A job on a snapshot."""

    subject_kind: ClassVar[str] = SNAPSHOT
    snapshot_id: str

    @property
    def subject(self) -> Subject:
        return Subject(SNAPSHOT, self.snapshot_id)


@dataclass(frozen=True)
class CreateSnapshot(SnapshotJob):
    """Apply a snapshot's workspace: a copy of its volume's content, taken when it runs."""

    kind: ClassVar[str] = "snapshot-create"


@dataclass(frozen=True)
class DeleteSnapshot(SnapshotJob):
    """Destroy a snapshot's workspace, then forget the snapshot."""

    kind: ClassVar[str] = "snapshot-delete"


RECORDS: dict[str, type[Job]] = {cls.kind: cls for cls in (
    BuildServer, DeleteServer, PowerAction, ConvergeVolumes, CreateVolume, DeleteVolume, CreateSnapshot,
    DeleteSnapshot, ResizeServer, RebuildServer, ImageServer, UploadVolumeImage, SyncFirewall)}


def record_type(kind: str) -> type[Job]:
    """The record type stored under `kind`; JobFormatError if there is none."""
    try:
        return RECORDS[kind]
    except KeyError:
        raise JobFormatError(f"unknown job kind {cut(kind)}") from None


def decode(kind: str, subject_id: str, args: Any) -> Job:
    """The record of a queue row; JobFormatError if its kind is unknown or its args do not fit it."""
    record = record_type(kind)
    if not isinstance(args, dict):
        raise JobFormatError(f"{record.kind} job: args must be an object, not {type(args).__name__}")
    return record.from_args(subject_id, args)
