"""Volumes and snapshots in SQLite, scoped by project; every status change that must not race is made here.

Checks and changes happen under one lock (per process, like ComputeStore), so
an attach and a delete of the same volume cannot both win.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable

from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from api.identity.tokens import Token
from api.volume.models import (
    ATTACHING,
    AVAILABLE,
    AWAITING_TRANSFER,
    DELETING,
    DETACHING,
    ERROR,
    ERROR_DELETING,
    ERROR_EXTENDING,
    EXTENDING,
    IN_USE,
    MAINTENANCE,
    RecordedAttach,
    Snapshot,
    Volume,
)
from api.volume.messages import ATTACH, VOLUME, MessageStore
from provisioner.excerpt import describe

# Cinder deletes a volume only from these statuses (and never one with snapshots).
DELETABLE = (AVAILABLE, ERROR, ERROR_DELETING, ERROR_EXTENDING)


def invalid_volume(message: str) -> BadRequest:
    """Cinder's (and Nova's) answer to an operation the volume's status forbids: 400 Invalid volume."""
    return BadRequest("", f"Invalid volume: {message}")


class VolumeStore:
    """The volumes and snapshots one token may see and change."""

    def __init__(self, db: Database):
        self.db = db
        self.volumes = Table(db, "volumes", Volume)
        self.snapshots = Table(db, "snapshots", Snapshot)
        self.messages = MessageStore(db)  # why an operation failed, for its project
        self._lock = threading.Lock()

    @staticmethod
    def scope(token: Token, all_projects: bool = False, project: str | None = None) -> list[str] | None:
        """The projects a listing covers: the token's, or every one (or `project`) for an admin asking for all."""
        if token.is_admin and all_projects:
            return [project] if project else None
        return [token.project_id]

    def volume(self, token: Token, volume_id: str) -> Volume:
        """A volume of the token's project (any, for an admin); another project's is NotFound, like a missing one."""
        found = self.volumes.get(volume_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Volume {volume_id} could not be found.")
        return found

    def snapshot(self, token: Token, snapshot_id: str) -> Snapshot:
        """A snapshot of the token's project (any, for an admin)."""
        found = self.snapshots.get(snapshot_id)
        if found is None or (found.project_id != token.project_id and not token.is_admin):
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        return found

    def change(self, volume_id: str, **changes: Any) -> Volume | None:
        """Update fields of the stored volume (None if it is gone meanwhile)."""
        with self._lock:
            return self._change(volume_id, **changes)

    def _change(self, volume_id: str, **changes: Any) -> Volume | None:
        current = self.volumes.get(volume_id)
        if current is None:
            return None
        return self.volumes.update(replace(current, updated=time.time(), **changes))

    def change_snapshot(self, snapshot_id: str, **changes: Any) -> Snapshot | None:
        """Update fields of the stored snapshot (None if it is gone meanwhile)."""
        with self._lock:
            current = self.snapshots.get(snapshot_id)
            if current is None:
                return None
            return self.snapshots.update(replace(current, updated=time.time(), **changes))

    def of_volume(self, volume_id: str) -> list[Snapshot]:
        """The snapshots taken of a volume."""
        return [s for s in self.snapshots.list() if s.volume_id == volume_id]

    def transition(self, volume_id: str, sources: tuple[str, ...], target: str) -> Volume:
        """Move a volume from one of `sources` to `target`; Invalid volume from any other status."""
        with self._lock:
            current = self.volumes.get(volume_id)
            if current is None or current.status not in sources:
                status = current.status if current else "deleted"
                raise invalid_volume(f"volume {volume_id} status must be {' or '.join(sources)}, but current "
                                     f"status is: {status}")
            return self._change(volume_id, status=target) or current

    def start_delete(self, volume: Volume, force: bool = False) -> Volume:
        """Mark a volume deleting; Invalid volume if it is attached, busy (unless `force`: an admin's
        os-force_delete) or has snapshots."""
        with self._lock:
            current = self.volumes.get(volume.id) or volume
            if (current.status not in DELETABLE and not force) or current.server_id is not None or current.recorded:
                raise invalid_volume(f"volume {volume.id} is {current.status}: it must be available or error, "
                                     "and not attached (detach it first)")
            if [s for s in self.of_volume(volume.id) if s.status != DELETING]:
                raise invalid_volume(f"volume {volume.id} has snapshots: delete them first (or delete with "
                                     "cascade=true)")
            return self._change(volume.id, status=DELETING, fault=None) or current

    def start_extend(self, volume_id: str, size: int, allowed: tuple[str, ...]) -> Volume:
        """Mark a volume of an `allowed` status (available; in-use from 3.42) extending to `size` GiB (its size
        changes once the apply is done); Invalid volume if its status is no longer one of them."""
        with self._lock:
            current = self.volumes.get(volume_id)
            if current is None or current.status not in allowed:
                status = current.status if current else "deleted"
                raise invalid_volume(f"volume {volume_id} status must be {' or '.join(allowed)} to extend, but "
                                     f"current status is: {status}")
            return self._change(volume_id, status=EXTENDING, extending_to=size, fault=None) or current

    def retype(self, volume_id: str, type_name: str) -> Volume:
        """Give an available or in-use volume another type; Invalid volume in any other status."""
        with self._lock:
            current = self.volumes.get(volume_id)
            if current is None or current.status not in (AVAILABLE, IN_USE):
                status = current.status if current else "deleted"
                raise invalid_volume(f"volume {volume_id} status must be available or in-use to retype, but "
                                     f"current status is: {status}")
            return self._change(volume_id, volume_type=type_name) or current

    def add_snapshot(self, snapshot: Snapshot, admit: Callable[[str], None]) -> Snapshot:
        """Record a new snapshot; Invalid volume unless its volume is available or in use. `admit(project_id)`
        (the quota check) runs in the transaction that inserts it."""
        # The process lock first, then SQLite's: the other holders of _lock write while they hold it.
        with self._lock, self.db.transaction():
            volume = self.volumes.get(snapshot.volume_id)
            if volume is None or volume.status not in (AVAILABLE, IN_USE):
                status = volume.status if volume else "deleted"
                raise invalid_volume(f"volume {snapshot.volume_id} status must be available or in-use, "
                                     f"but current status is: {status}")
            admit(snapshot.project_id)
            return self.snapshots.insert(snapshot)

    def give(self, volume_id: str, project_id: str, user_id: str, with_snapshots: bool,
             admit: Callable[[int, int, int], None]) -> Volume:
        """Move a volume awaiting transfer (and its snapshots, if `with_snapshots`) to another project and user,
        available again; `admit(volumes, snapshots, gigabytes)` (the new project's quota check) runs in the
        transaction that moves them. Invalid volume unless it is awaiting transfer."""
        with self._lock, self.db.transaction():
            volume = self.volumes.get(volume_id)
            if volume is None or volume.status != AWAITING_TRANSFER:
                raise invalid_volume(f"volume {volume_id} is not awaiting transfer")
            snapshots = self.of_volume(volume_id) if with_snapshots else []
            admit(1, len(snapshots), volume.size + sum(s.size for s in snapshots))
            now = time.time()
            for snapshot in snapshots:
                self.snapshots.update(replace(snapshot, project_id=project_id, user_id=user_id, updated=now))
            return self.volumes.update(replace(volume, project_id=project_id, user_id=user_id, status=AVAILABLE,
                                               updated=now))

    def reserve(self, volume_id: str, server_id: str, names: list[str], requested: str | None) -> Volume:
        """Mark an available volume attaching to the server as `requested`, or the first of `names` it has free.

        Invalid volume unless available; Conflict if `requested` is taken.
        """
        with self._lock:
            volume = self.volumes.get(volume_id)
            if volume is None or volume.status != AVAILABLE:
                status = volume.status if volume else "deleted"
                raise invalid_volume(f"volume {volume_id} status must be available, but current status is: "
                                     f"{status}")
            taken = {v.device for v in self.attached_to(server_id)}
            if requested in taken:
                raise Conflict(f"The supplied device path ({requested}) is in use.")
            device = requested or next((name for name in names if name not in taken), None)
            if device is None:
                raise BadRequest("volumeAttachment", f"server {server_id} has no free disk name left")
            return self._change(volume_id, status=ATTACHING, server_id=server_id, device=device,
                                attached_at=time.time(), fault=None) or volume

    def start_detach(self, volume_id: str, server_id: str) -> Volume:
        """Mark a volume in use by the server detaching; Invalid volume if it is not (yet) in use."""
        with self._lock:
            volume = self.volumes.get(volume_id)
            if volume is None or volume.server_id != server_id:
                raise NotFound(f"Volume {volume_id} is not attached to instance {server_id}.")
            if volume.status != IN_USE:
                raise invalid_volume(f"volume {volume_id} status must be in-use, but current status is: "
                                     f"{volume.status}")
            return self._change(volume_id, status=DETACHING) or volume

    def attached_to(self, server_id: str) -> list[Volume]:
        """The volumes attached or attaching to a server, by device."""
        found = [v for v in self.volumes.list() if v.server_id == server_id]
        return sorted(found, key=lambda v: v.device or "")

    def attachments(self, projects: list[str] | None) -> dict[str, list[str]]:
        """The ids of the volumes attached to each server of these projects (all: None), by device."""
        found: dict[str, list[str]] = {}
        for volume in sorted(self.volumes.list(projects), key=lambda v: v.device or ""):
            if volume.attached:
                found.setdefault(volume.server_id, []).append(volume.id)
        return found

    def release(self, volume_id: str, fault: str | None = None) -> None:
        """Detach a volume in the records: available again (if an attach failed, `fault` says why: a user
        message for the volume's project)."""
        volume = self.change(volume_id, status=AVAILABLE, server_id=None, device=None, attached_at=0.0, fault=fault)
        if volume is not None and fault:
            self.messages.record(volume.project_id, VOLUME, volume.id, ATTACH, fault)

    def record_attach(self, volume_id: str, attach: RecordedAttach) -> Volume:
        """os-attach: an available (or reserved: attaching) volume is in-use with the attachment recorded."""
        with self._lock:
            current = self._get(volume_id)
            if current.status == MAINTENANCE:
                raise invalid_volume("The volume cannot be attached in maintenance mode.")
            if current.status not in (AVAILABLE, ATTACHING) or current.server_id is not None or current.recorded:
                raise invalid_volume(f"volume {volume_id} status must be available or attaching (reserved) to "
                                     f"attach, but current status is: {current.status} (no multiattach)")
            return self._change(volume_id, status=IN_USE, recorded_id=attach.attachment_id,
                                recorded_server=attach.instance_uuid, recorded_host=attach.host_name,
                                recorded_mountpoint=attach.mountpoint, recorded_mode=attach.mode,
                                recorded_at=time.time(), fault=None) or current

    def begin_detaching(self, volume_id: str) -> Volume:
        """os-begin_detaching: in-use (attached) → detaching."""
        with self._lock:
            current = self._get(volume_id)
            if current.status != IN_USE or not (current.recorded or current.attached):
                raise invalid_volume("Unable to detach volume. Volume status must be 'in-use' and attach_status "
                                     "must be 'attached' to detach.")
            return self._change(volume_id, status=DETACHING) or current

    def roll_detaching(self, volume_id: str) -> Volume:
        """os-roll_detaching: detaching → in-use; any other status is left as it is (as Cinder's conditional
        update)."""
        with self._lock:
            current = self._get(volume_id)
            if current.status != DETACHING:
                return current
            return self._change(volume_id, status=IN_USE) or current

    def record_detach(self, volume_id: str, attachment_id: str | None, forced: bool = False) -> Volume:
        """os-detach (os-force_detach: `forced`, whatever the status but maintenance's refusal): the recorded
        attachment is gone and the volume available. Nova's attachments are detached through Nova only: here
        Nova's attach put the volume in the server's domain, and only Nova's detach takes it out."""
        with self._lock:
            current = self._get(volume_id)
            if current.status == MAINTENANCE and not forced:
                raise invalid_volume("The volume cannot be detached in maintenance mode.")
            if current.server_id is not None:
                raise invalid_volume(f"volume {volume_id} is attached by Nova to server {current.server_id}: "
                                     "detach it with DELETE /compute/v2.1/servers/{server_id}/"
                                     "os-volume_attachments/{volume_id}")
            if attachment_id is not None and attachment_id != current.recorded_id:
                raise NotFound(f"Volume attachment {describe(attachment_id)} could not be found.")
            if not current.recorded and current.status not in (IN_USE, DETACHING, ATTACHING) and not forced:
                return current  # nothing attached: as Cinder's manager, nothing to do
            return self._change(volume_id, status=AVAILABLE, recorded_id=None, recorded_server=None,
                                recorded_host=None, recorded_mountpoint=None, recorded_mode="rw",
                                recorded_at=0.0) or current

    def _get(self, volume_id: str) -> Volume:
        current = self.volumes.get(volume_id)
        if current is None:
            raise NotFound(f"Volume {volume_id} could not be found.")
        return current

    def start_delete_snapshot(self, snapshot: Snapshot, force: bool = False) -> Snapshot:
        """Mark a snapshot deleting; Invalid snapshot while it is being created or deleted (unless `force`)."""
        with self._lock:
            current = self.snapshots.get(snapshot.id) or snapshot
            if current.status not in (AVAILABLE, ERROR) and not force:
                raise BadRequest("", f"Invalid snapshot: snapshot {snapshot.id} is {current.status}: it must be "
                                     "available or error")
            return self.snapshots.update(replace(current, status=DELETING, fault=None, updated=time.time()))

    def usage(self, project_id: str) -> dict[str, int]:
        """Cinder's quota usage: volumes, snapshots, and the GiB of both (Cinder counts snapshots in gigabytes)."""
        volumes, snapshots = self.volumes.list([project_id]), self.snapshots.list([project_id])
        return {"volumes": len(volumes), "snapshots": len(snapshots),
                "gigabytes": sum(v.size for v in volumes) + sum(s.size for s in snapshots)}
