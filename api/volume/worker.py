"""Volume and snapshot creation and deletion, as jobs of the API's persistent job queue.

Each applies or destroys one standalone workspace (provisioner.volumes; a
volume's is blank or a copy of its snapshot's, source volume's or image's, and an
extend re-applies it at the new size), as a typed record (api.jobs.records: CreateVolume, DeleteVolume, CreateSnapshot,
DeleteSnapshot) whose subject is the volume or snapshot: one record's jobs
run in order, and a job whose process died resumes at the next start
(applies and destroys are idempotent; one cut short by the server stopping
is queued again). A Terraform failure, or a job dropped after its process
died too often, becomes status `error` (`error_deleting` for a volume's
delete, `error_extending` for an extend), and leaves its project a user message saying why
(api.volume.messages; the whole reason goes to the server's log); so does a volume or snapshot left
creating or deleting without a job at a restart.
"""

from __future__ import annotations

from api.engine import Engine
from api.jobs.queue import JobQueue
from api.jobs.records import SNAPSHOT, VOLUME, CreateSnapshot, CreateVolume, DeleteSnapshot, DeleteVolume
from api.jobs.runner import JobRunner
from api.volume import messages
from api.volume.placement import VolumePlacement
from api.volume.models import (
    AVAILABLE,
    CREATING,
    DELETING,
    ERROR,
    ERROR_DELETING,
    ERROR_EXTENDING,
    EXTENDING,
    GIB,
    IN_USE,
    Snapshot,
    Volume,
)
from api.volume.store import VolumeStore
from provisioner.volumes import VolumeSpec, create_volume, destroy_volume

RESTARTED = "interrupted by an API server restart"


class VolumeWorker:
    """Queues and runs volume and snapshot workspaces' applies and destroys."""

    def __init__(self, store: VolumeStore, engine: Engine, runner: JobRunner, placement: VolumePlacement):
        self.store = store
        self.engine = engine
        self.runner = runner
        self.placement = placement
        runner.register(CreateVolume, self.run_create, self.create_failed)
        runner.register(DeleteVolume, self.run_delete, self.delete_failed)
        runner.register(CreateSnapshot, self.run_snapshot, self.snapshot_failed)
        runner.register(DeleteSnapshot, self.run_delete_snapshot, self.snapshot_failed)
        runner.on_recover.append(self.recover)

    def create(self, volume: Volume) -> None:
        """Queue the apply of a blank volume's workspace: creating → available, or error with the reason."""
        self.runner.submit(CreateVolume(volume.id))

    def delete(self, volume: Volume) -> None:
        """Queue the destroy of a volume's workspace, then it is forgotten (or error_deleting with the reason)."""
        self.runner.submit(DeleteVolume(volume.id))

    def snapshot(self, snapshot: Snapshot) -> None:
        """Queue the apply of a snapshot's workspace: a copy of its volume's content, taken when it runs."""
        self.runner.submit(CreateSnapshot(snapshot.id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Queue the destroy of a snapshot's workspace, then it is forgotten (or error with the reason)."""
        self.runner.submit(DeleteSnapshot(snapshot.id))

    def extend(self, volume: Volume) -> None:
        """Queue the re-apply of an extending volume's workspace at its new size: available at that size, or
        error_extending (at its old size) with the reason."""
        self.runner.submit(CreateVolume(volume.id))

    def uri_of(self, record: Volume | Snapshot) -> str:
        """The libvirt URI of the hypervisor a volume or snapshot is on (its pool holds its file)."""
        return self.placement.host_of(record.hypervisor).uri

    def _source(self, volume: Volume) -> str | None:
        """The workspace a new volume copies: its snapshot's or its source volume's (None: blank)."""
        if volume.snapshot_id:
            return f"snap-{volume.snapshot_id}"
        if volume.source_volid:
            return f"vol-{volume.source_volid}"
        return None

    def run_create(self, job: CreateVolume) -> None:
        """Apply the volume's workspace (a create, or an extend's re-apply at the bigger size); available once
        done (a volume deleted meanwhile: nothing to do)."""
        volume = self.store.volumes.get(job.volume_id)
        if volume is None:
            return
        size = volume.extending_to if volume.status == EXTENDING else volume.size
        create_volume(VolumeSpec(volume.workspace, self.uri_of(volume), size * GIB, copy_of=self._source(volume),
                                 content=volume.image_file, content_format=volume.image_format), self.engine.ctx)
        # An attached volume (grown through its running guest: virDomainBlockResize) is in use again.
        in_use = volume.status == EXTENDING and (volume.server_id is not None or volume.recorded)
        self.store.change(volume.id, status=IN_USE if in_use else AVAILABLE, size=size, extending_to=0)

    def _volume_message(self, volume: Volume | None, action: messages.Action, reason: str) -> None:
        if volume is not None:
            self.store.messages.record(volume.project_id, messages.VOLUME, volume.id, action, reason)

    def _snapshot_message(self, snapshot: Snapshot | None, action: messages.Action, reason: str) -> None:
        if snapshot is not None:
            self.store.messages.record(snapshot.project_id, messages.SNAPSHOT, snapshot.id, action, reason)

    def create_failed(self, job: CreateVolume, reason: str) -> None:
        """error (error_extending for an extend, at its old size), with the reason as a user message."""
        volume = self.store.volumes.get(job.volume_id)
        if volume is not None and volume.status == EXTENDING:
            changed = self.store.change(job.volume_id, status=ERROR_EXTENDING, extending_to=0, fault=reason)
            self._volume_message(changed, messages.EXTEND, reason)
        else:
            changed = self.store.change(job.volume_id, status=ERROR, fault=reason)
            self._volume_message(changed, messages.ALLOCATE, reason)

    def run_delete(self, job: DeleteVolume) -> None:
        """Destroy the volume's workspace, then forget the volume."""
        volume = self.store.volumes.get(job.volume_id)
        if volume is not None:
            destroy_volume(volume.workspace, self.engine.ctx)
            self.store.volumes.delete(volume.id)

    def delete_failed(self, job: DeleteVolume, reason: str) -> None:
        """error_deleting, with the reason as a user message (deleting it again retries)."""
        changed = self.store.change(job.volume_id, status=ERROR_DELETING, fault=reason)
        self._volume_message(changed, messages.DELETE_VOLUME, reason)

    def run_snapshot(self, job: CreateSnapshot) -> None:
        """Apply the snapshot's workspace as a copy of its volume's; available once done."""
        snapshot = self.store.snapshots.get(job.snapshot_id)
        volume = self.store.volumes.get(snapshot.volume_id) if snapshot else None
        if snapshot is not None and volume is not None:
            # On its volume's hypervisor: the copy is made from the file in that pool.
            spec = VolumeSpec(snapshot.workspace, self.uri_of(volume), snapshot.size * GIB, copy_of=volume.workspace)
            create_volume(spec, self.engine.ctx)
            self.store.change_snapshot(snapshot.id, status=AVAILABLE)

    def run_delete_snapshot(self, job: DeleteSnapshot) -> None:
        """Destroy the snapshot's workspace, then forget the snapshot."""
        snapshot = self.store.snapshots.get(job.snapshot_id)
        if snapshot is not None:
            destroy_volume(snapshot.workspace, self.engine.ctx)
            self.store.snapshots.delete(snapshot.id)

    def snapshot_failed(self, job: CreateSnapshot | DeleteSnapshot, reason: str) -> None:
        """error, with the reason as a user message (a failed create or delete alike: Cinder has no
        error_deleting snapshot)."""
        changed = self.store.change_snapshot(job.snapshot_id, status=ERROR, fault=reason)
        action = messages.DELETE_SNAPSHOT if isinstance(job, DeleteSnapshot) else messages.CREATE_SNAPSHOT
        self._snapshot_message(changed, action, reason)

    def recover(self, queue: JobQueue) -> None:
        """At start: a volume or snapshot left creating or deleting without a job is error (error_deleting)."""
        volumes, snapshots = queue.subjects(VOLUME), queue.subjects(SNAPSHOT)
        for volume in self.store.volumes.list():
            if volume.id not in volumes and volume.status in (CREATING, DELETING, EXTENDING):
                status = {CREATING: ERROR, DELETING: ERROR_DELETING, EXTENDING: ERROR_EXTENDING}[volume.status]
                reason = f"{volume.status} {RESTARTED}"
                changed = self.store.change(volume.id, status=status, extending_to=0, fault=reason)
                action = {CREATING: messages.ALLOCATE, DELETING: messages.DELETE_VOLUME,
                          EXTENDING: messages.EXTEND}[volume.status]
                self._volume_message(changed, action, reason)
        for snapshot in self.store.snapshots.list():
            if snapshot.id not in snapshots and snapshot.status in (CREATING, DELETING):
                reason = f"{snapshot.status} {RESTARTED}"
                changed = self.store.change_snapshot(snapshot.id, status=ERROR, fault=reason)
                action = messages.CREATE_SNAPSHOT if snapshot.status == CREATING else messages.DELETE_SNAPSHOT
                self._snapshot_message(changed, action, reason)
