"""Volume and snapshot creation and deletion, on a small thread pool of their own.

They touch no server, so they do not queue behind server tasks; each one
applies or destroys one standalone workspace (provisioner.volumes). A
Terraform failure becomes status `error` (`error_deleting`) with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from api.engine import Engine
from api.volume.models import AVAILABLE, ERROR, ERROR_DELETING, GIB, Snapshot, Volume
from api.volume.store import VolumeStore
from provisioner.errors import ProvisionError
from provisioner.volumes import VolumeSpec, create_volume, destroy_volume

log = logging.getLogger("api.volume")


class VolumeWorker:
    """Runs volume and snapshot workspaces' applies and destroys."""

    def __init__(self, store: VolumeStore, engine: Engine, uri: str, workers: int = 2):
        self.store = store
        self.engine = engine
        self.uri = uri
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="volume-task")

    def _submit(self, what: str, work: Callable[[], None], failed: Callable[[str], None]) -> None:
        def run() -> None:
            try:
                work()
            except ProvisionError as exc:
                failed(str(exc))
            except Exception:
                # A bug, not a provisioning failure: keep the worker alive, mark the record.
                log.exception("%s failed", what)
                failed("internal error: see the API server's log")
        self.pool.submit(run)

    def create(self, volume: Volume) -> None:
        """Apply a blank volume's workspace: creating → available, or error with the reason."""
        def work() -> None:
            create_volume(VolumeSpec(volume.workspace, self.uri, volume.size * GIB), self.engine.ctx)
            self.store.change(volume.id, status=AVAILABLE)
        self._submit(f"create volume {volume.id}", work,
                     lambda reason: self.store.change(volume.id, status=ERROR, fault=reason))

    def delete(self, volume: Volume) -> None:
        """Destroy a volume's workspace, then forget it (or error_deleting with the reason)."""
        def work() -> None:
            destroy_volume(volume.workspace, self.engine.ctx)
            self.store.volumes.delete(volume.id)
        self._submit(f"delete volume {volume.id}", work,
                     lambda reason: self.store.change(volume.id, status=ERROR_DELETING, fault=reason))

    def snapshot(self, snapshot: Snapshot, volume: Volume) -> None:
        """Apply a snapshot's workspace: a copy of the volume's content, taken now."""
        def work() -> None:
            create_volume(VolumeSpec(snapshot.workspace, self.uri, snapshot.size * GIB, copy_of=volume.workspace),
                          self.engine.ctx)
            self.store.change_snapshot(snapshot.id, status=AVAILABLE)
        self._submit(f"create snapshot {snapshot.id}", work,
                     lambda reason: self.store.change_snapshot(snapshot.id, status=ERROR, fault=reason))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Destroy a snapshot's workspace, then forget it (or error with the reason)."""
        def work() -> None:
            destroy_volume(snapshot.workspace, self.engine.ctx)
            self.store.snapshots.delete(snapshot.id)
        self._submit(f"delete snapshot {snapshot.id}", work,
                     lambda reason: self.store.change_snapshot(snapshot.id, status=ERROR, fault=reason))

    def shutdown(self) -> None:
        """Stop taking work; running applies finish (an interrupted one is marked at the next start)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
