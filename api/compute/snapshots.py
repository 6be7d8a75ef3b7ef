"""Nova's createImage and createBackup server actions: the server's root disk becomes a Glance image.

The request makes a queued image row at once (Glance shows it; the 202 has
its Location, and from 2.45 a body {"image_id"}), sets the server's task_state
image_snapshot, and queues an ImageServer job (api.jobs). The job marks the
image saving (task_state image_pending_upload), flattens the root disk with
the guest paused (provisioner/snapshots/export.py), imports the file into the
image store under the image's id, and makes the image active; a backup then
deletes the oldest backups of the server with its backup_type beyond
`rotation`. A failure kills the image, clears the task_state and records the
reason as the server's fault; a new server boots from an active image like
from any other.

A volume-backed server's createImage is Nova's: no disk is copied, its
volumes are snapshotted in Cinder (api.compute.block_devices) and the image,
active at once, holds no data (a qcow2 of virtual size 0: the image store
keeps no empty file) and properties `block_device_mapping` (those snapshots,
JSON), `bdm_v2` and `root_device_name`; booting it makes volumes of them.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import falcon

from api.auth import token_of
from api.compute.block_devices import BlockDevices
from api.compute.microversion import version_of
from api.compute.models import ACTIVE, DELETING, PAUSED, SHUTOFF, ComputeStore, Server
from api.compute.resize import ActionHandler, refuse_busy
from api.compute.tasks import ServerTasks
from api.errors import ApiError
from api.http import send
from api.identity.tokens import Token
from api.image.catalog import ACTIVE as IMAGE_ACTIVE
from api.image.catalog import DIGESTS, KILLED, QUEUED, SAVING, ImageCatalog, ImageRow
from api.jobs.records import ImageServer
from api.microversion import Version
from provisioner.errors import InputError, ProvisionError
from provisioner.images import ImageError
from provisioner.snapshots.export import export_root_disk
from provisioner.snapshots.store import file_sha256

SNAPSHOTTABLE = (ACTIVE, SHUTOFF, PAUSED)  # Nova snapshots active, stopped and paused servers
IMAGE_ID_BODY = Version(2, 45)  # from 2.45 the answer is {"image_id"} (before, only the Location header)


@functools.cache
def _no_data() -> bytes:
    """The smallest qcow2 of virtual size 0 (512-byte clusters): a volume-backed snapshot's image's file (made
    once: qemu-img writes the same header every time)."""
    with tempfile.TemporaryDirectory(prefix=".empty-qcow2-") as scratch:
        path = Path(scratch) / "empty.qcow2"
        try:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", str(path), "0"],
                           check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ApiError(f"making the snapshot image's empty qcow2 failed: {exc}") from None  # Nova's 500
        return path.read_bytes()


class ServerImages:
    """The createImage and createBackup actions and their ImageServer jobs."""

    def __init__(self, store: ComputeStore, tasks: ServerTasks, images: ImageCatalog, block_devices: BlockDevices):
        self.store = store
        self.tasks = tasks
        self.images = images
        self.block_devices = block_devices
        tasks.runner.register(ImageServer, self.run, self.failed)

    def actions(self) -> dict[str, ActionHandler]:
        """The action names this module serves, for ServerAction."""
        return {"createImage": self.create_image, "createBackup": self.create_backup}

    def create_image(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Queue a snapshot image of the server (202, Location of the image)."""
        name, metadata = self._arguments(arguments)
        refuse_busy(server, "createImage", SNAPSHOTTABLE)
        if server.root_volume is not None:
            row = self._volume_backed(token_of(req), server, name, metadata)
            resp.set_header("Location", f"{req.prefix}/image/v2/images/{row.id}")
            if version_of(req) >= IMAGE_ID_BODY:
                send(resp, {"image_id": row.id}, 202)
            else:
                resp.status = 202
            return
        row = self._row(server, token_of(req).user_id, name, metadata, {"image_type": "snapshot"})
        self._queue(req, resp, server, ImageServer(server.id, row.id))

    def _volume_backed(self, token: Token, server: Server, name: str, metadata: dict[str, str]) -> ImageRow:
        """Nova's snapshot of a volume-backed server: its volumes' Cinder snapshots, named by an image with no
        data, active at once."""
        mappings = self.block_devices.snapshot_mappings(token, server, name)
        row = self._row(server, token.user_id, name, metadata, {
            "image_type": "snapshot", "block_device_mapping": json.dumps(mappings), "bdm_v2": "True",
            "root_device_name": "/dev/vda"})
        try:
            with io.BytesIO(_no_data()) as stream:
                record = self.images.store.import_stream(
                    f"snapshot-{row.id}", stream, f"nova:{server.id}", compute=DIGESTS, image_id=row.id,
                    visibility=row.visibility, owner=row.project_id)
        except (ImageError, InputError) as exc:
            self.images.rows.delete(row.id)
            raise ApiError(f"recording the snapshot image failed: {exc}") from None  # Nova's 500 computeFault
        return self.images.rows.update(replace(row, status=IMAGE_ACTIVE, record_id=record.id, updated=time.time()))

    def create_backup(self, req: falcon.Request, resp: falcon.Response, server: Server, arguments: Any) -> None:
        """Queue a backup image of the server; once it is active, only `rotation` backups of its type stay."""
        name, metadata = self._arguments(arguments)
        backup_type, rotation = arguments["backup_type"], arguments["rotation"]
        refuse_busy(server, "createBackup", SNAPSHOTTABLE)
        row = self._row(server, token_of(req).user_id, name, metadata,
                        {"image_type": "backup", "backup_type": backup_type})
        self._queue(req, resp, server, ImageServer(server.id, row.id, backup_type, rotation))

    @staticmethod
    def _arguments(arguments: dict[str, Any]) -> tuple[str, dict[str, str]]:
        # Their shape is api/openapi.yaml's (checked by the hook).
        return arguments["name"], dict(arguments.get("metadata") or {})

    def _row(self, server: Server, user_id: str, name: str, metadata: dict[str, str],
             kind: dict[str, str]) -> ImageRow:
        # As Nova: the request's metadata goes over what Nova sets (Tempest sets its own image_type).
        properties = {**kind, "instance_uuid": server.id, "base_image_ref": server.image_id,
                      "user_id": user_id, "image_location": "snapshot", **metadata}
        now = time.time()
        row = ImageRow(id=str(uuid.uuid4()), name=name, project_id=server.project_id, visibility="private",
                       disk_format="qcow2", container_format="bare", properties=properties, status=QUEUED,
                       created=now, updated=now)
        return self.images.rows.insert(row)

    def _queue(self, req: falcon.Request, resp: falcon.Response, server: Server, job: ImageServer) -> None:
        self.store.change(server.id, task_state="image_snapshot", fault=None)
        self.tasks.runner.submit(job)
        resp.set_header("Location", f"{req.prefix}/image/v2/images/{job.image_id}")
        if version_of(req) >= IMAGE_ID_BODY:
            send(resp, {"image_id": job.image_id}, 202)
        else:
            resp.status = 202

    def run(self, job: ImageServer) -> None:
        """Copy the disk into the image, make it active, rotate backups (a ProvisionError: `failed`)."""
        server = self.store.servers.get(job.server_id)
        row = self.images.rows.get(job.image_id)
        if row is None:
            self._clear(job.server_id)
            return  # the image was deleted meanwhile: nothing to fill
        if server is None or server.task_state == DELETING:
            raise ProvisionError(f"server {job.server_id} was deleted before its disk was copied")
        self.images.rows.update(replace(row, status=SAVING, updated=time.time()))
        self.store.change(server.id, task_state="image_pending_upload")
        layout = self.tasks.engine.layout
        layout.images.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".export-", dir=layout.images) as scratch:
            disk = Path(scratch) / "disk.qcow2"
            export_root_disk(layout, server.domain, disk)
            digest = file_sha256(disk)
            # The same bytes as a version already stored (a server whose disk holds only its image): that
            # version is the data, not a copy the store would see as in use by every server it backs.
            record = next((r for r in self.images.store.list() if r.sha256 == digest and not r.missing), None)
            if record is None:
                try:
                    with disk.open("rb") as stream:
                        # Stored as snapshot-<id>: Nova's image names (any 255 characters) are no store names.
                        record = self.images.store.import_stream(
                            f"snapshot-{row.id}", stream, f"nova:{server.id}", compute=DIGESTS, image_id=row.id,
                            visibility=row.visibility, owner=row.project_id, **row.properties)
                except (ImageError, InputError) as exc:
                    raise ProvisionError(f"importing the disk into the image store failed: {exc}") from None
        current = self.images.rows.get(row.id) or row
        self.images.rows.update(replace(current, status=IMAGE_ACTIVE, record_id=record.id,
                                        updated=time.time()))
        if job.backup_type is not None and job.rotation is not None:
            self._rotate(server, job.backup_type, job.rotation)
        self._clear(server.id)

    def failed(self, job: ImageServer, reason: str) -> None:
        """The image is killed; the server keeps its state, with the reason as its fault."""
        row = self.images.rows.get(job.image_id)
        if row is not None:
            self.images.rows.update(replace(row, status=KILLED, updated=time.time()))
        self._clear(job.server_id, fault=f"image {job.image_id} failed: {reason}")

    def _rotate(self, server: Server, backup_type: str, rotation: int) -> None:
        """Delete the server's oldest active backups of `backup_type` beyond `rotation` (Nova's rotation)."""
        backups = sorted((r for r in self.images.rows.list()
                          if r.properties.get("instance_uuid") == server.id
                          and r.properties.get("image_type") == "backup"
                          and r.properties.get("backup_type") == backup_type and r.status == IMAGE_ACTIVE),
                         key=lambda r: (r.created, r.id))
        for row in backups[:max(0, len(backups) - rotation)]:
            shared = any(o.record_id == row.record_id and o.id != row.id for o in self.images.rows.list())
            if row.record_id == row.id and not shared:  # its own version (not one it borrowed)
                try:
                    self.images.store.delete(row.record_id)
                except (ImageError, InputError):
                    continue  # in use (a server boots from it): kept, as Glance refuses the delete
            self.images.rows.delete(row.id)

    def _clear(self, server_id: str, **changes: object) -> None:
        current = self.store.servers.get(server_id)
        if current is not None and current.task_state != DELETING:
            self.store.change(server_id, task_state=None, **changes)
