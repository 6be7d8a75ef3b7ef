"""Volume and snapshot creation and deletion, as tasks of the API's persistent task queue.

Each applies or destroys one standalone workspace (provisioner.volumes).
They run on the server task queue (api/compute/tasks.py) keyed by the
volume's or snapshot's own id, not a server's: one record's tasks run in
order, and a task whose process died resumes at the next start (applies
and destroys are idempotent; one cut short by the server stopping is queued
again). A Terraform failure becomes status `error` (`error_deleting` for a
volume) with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from api.compute.tasks import Interrupted, ServerTasks, Task
from api.engine import Engine
from api.volume.models import AVAILABLE, ERROR, ERROR_DELETING, GIB, Snapshot, Volume
from api.volume.store import VolumeStore
from provisioner.errors import ProvisionError
from provisioner.volumes import VolumeSpec, create_volume, destroy_volume


class VolumeWorker:
    """Queues and runs volume and snapshot workspaces' applies and destroys."""

    def __init__(self, store: VolumeStore, engine: Engine, tasks: ServerTasks, uri: str):
        self.store = store
        self.engine = engine
        self.tasks = tasks
        self.uri = uri
        tasks.handlers.update({"volume-create": self.run_create, "volume-delete": self.run_delete,
                               "snapshot-create": self.run_snapshot, "snapshot-delete": self.run_delete_snapshot})

    def create(self, volume: Volume) -> None:
        """Queue the apply of a blank volume's workspace: creating → available, or error with the reason."""
        self.tasks.submit(volume.id, "volume-create", {})

    def delete(self, volume: Volume) -> None:
        """Queue the destroy of a volume's workspace, then it is forgotten (or error_deleting with the reason)."""
        self.tasks.submit(volume.id, "volume-delete", {})

    def snapshot(self, snapshot: Snapshot) -> None:
        """Queue the apply of a snapshot's workspace: a copy of its volume's content, taken when it runs."""
        self.tasks.submit(snapshot.id, "snapshot-create", {})

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Queue the destroy of a snapshot's workspace, then it is forgotten (or error with the reason)."""
        self.tasks.submit(snapshot.id, "snapshot-delete", {})

    def _run(self, work: Callable[[], None], done: Callable[[], object], failed: Callable[[str], object]) -> None:
        try:
            work()
        except ProvisionError as exc:
            if self.tasks.stopping:
                raise Interrupted from exc  # queued again: the apply or destroy resumes at the next start
            failed(str(exc))
            return
        done()

    def run_create(self, task: Task) -> None:
        """The `volume-create` kind, keyed by the volume id."""
        volume = self.store.volumes.get(task.server_id)
        if volume is not None:
            spec = VolumeSpec(volume.workspace, self.uri, volume.size * GIB)
            self._run(lambda: create_volume(spec, self.engine.ctx),
                      lambda: self.store.change(volume.id, status=AVAILABLE),
                      lambda reason: self.store.change(volume.id, status=ERROR, fault=reason))

    def run_delete(self, task: Task) -> None:
        """The `volume-delete` kind, keyed by the volume id."""
        volume = self.store.volumes.get(task.server_id)
        if volume is not None:
            self._run(lambda: destroy_volume(volume.workspace, self.engine.ctx),
                      lambda: self.store.volumes.delete(volume.id),
                      lambda reason: self.store.change(volume.id, status=ERROR_DELETING, fault=reason))

    def run_snapshot(self, task: Task) -> None:
        """The `snapshot-create` kind, keyed by the snapshot id."""
        snapshot = self.store.snapshots.get(task.server_id)
        volume = self.store.volumes.get(snapshot.volume_id) if snapshot else None
        if snapshot is not None and volume is not None:
            spec = VolumeSpec(snapshot.workspace, self.uri, snapshot.size * GIB, copy_of=volume.workspace)
            self._run(lambda: create_volume(spec, self.engine.ctx),
                      lambda: self.store.change_snapshot(snapshot.id, status=AVAILABLE),
                      lambda reason: self.store.change_snapshot(snapshot.id, status=ERROR, fault=reason))

    def run_delete_snapshot(self, task: Task) -> None:
        """The `snapshot-delete` kind, keyed by the snapshot id."""
        snapshot = self.store.snapshots.get(task.server_id)
        if snapshot is not None:
            self._run(lambda: destroy_volume(snapshot.workspace, self.engine.ctx),
                      lambda: self.store.snapshots.delete(snapshot.id),
                      lambda reason: self.store.change_snapshot(snapshot.id, status=ERROR, fault=reason))
