"""Cinder's os-volume_upload_image: a Glance image of a volume's data.

The action makes a queued image row at once (Glance shows it), marks the
volume uploading and queues an UploadVolumeImage job (api.jobs). The job marks
the image saving, converts the volume's file to the image's disk_format with
`qemu-img convert` (raw or qcow2: the formats the image store takes), imports
it into the image store under the image's id (size and checksums are what
was copied) and makes the image active, the volume available again. A failure
kills the image, leaves the volume available and records the reason as a user
message. On the simulated hypervisor a volume has no file: it holds what its
recorded content is (an image's file), or zeros of its size when blank.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from api.config import ApiConfig
from api.errors import BadRequest, Forbidden
from api.http import isotime
from api.identity.tokens import Token
from api.image.catalog import ACTIVE as IMAGE_ACTIVE
from api.image.catalog import DIGESTS, KILLED, QUEUED, SAVING, ImageCatalog, ImageRow
from api.jobs.records import UploadVolumeImage
from api.jobs.runner import JobRunner
from api.volume import messages
from api.volume.models import AVAILABLE, GIB, UPLOADING, Volume
from api.volume.store import VolumeStore
from api.volume.types import boolish
from provisioner.errors import InputError, ProvisionError
from provisioner.images import ImageError
from provisioner.layout import POOL_NAME, Layout, is_simulated
from provisioner.provider.simulator import content_record
from provisioner.snapshots.store import RESERVE_BYTES
from provisioner.volumes import volume_name

CONVERT_TIMEOUT = 3600  # bounds a hung qemu-img only: a few GiB take seconds


def _qemu_img(volume: Volume, *args: str) -> str:
    """Run qemu-img; its output, or a ProvisionError with its words."""
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    if done.returncode != 0:
        raise ProvisionError(f"qemu-img {args[0]} of volume {volume.id} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def _virtual_size(volume: Volume, path: Path) -> int:
    return int(json.loads(_qemu_img(volume, "info", "--output=json", str(path)))["virtual-size"])


class VolumeUploads:
    """The os-volume_upload_image action and its UploadVolumeImage jobs."""

    def __init__(self, config: ApiConfig, store: VolumeStore, images: ImageCatalog, runner: JobRunner,
                 layout: Layout, uri_of: Callable[[Volume], str]):
        self.config = config
        self.store = store
        self.images = images
        self.runner = runner
        self.layout = layout
        self.uri_of = uri_of  # the hypervisor a volume is on (api.volume.worker)
        runner.register(UploadVolumeImage, self.run, self.failed)

    def start(self, token: Token, volume: Volume, args: dict[str, Any], newer: bool) -> dict[str, Any]:
        """Queue the upload (`newer`: microversion 3.1, which takes visibility and protected); Cinder's answer."""
        disk_format = args.get("disk_format") or "raw"
        container_format = args.get("container_format") or "bare"
        visibility = (args.get("visibility") if newer else None) or "private"
        protected = boolish(args.get("protected") or False) if newer else False
        if visibility in ("public", "community") and not token.is_admin:
            raise Forbidden(f"uploading a volume as a {visibility} image requires the admin role")
        if volume.size * GIB > self.config.max_image_body:
            raise BadRequest("os-volume_upload_image", f"volume {volume.id} is {volume.size} GiB: larger than "
                                                       f"max_image_body ({self.config.max_image_body} bytes)")
        self.store.transition(volume.id, (AVAILABLE,), UPLOADING)
        now = time.time()
        row = ImageRow(id=str(uuid.uuid4()), name=args["image_name"], project_id=volume.project_id,
                       visibility=visibility, disk_format=disk_format, container_format=container_format,
                       properties={}, status=QUEUED, created=now, updated=now, protected=protected)
        self.images.rows.insert(row)
        self.runner.submit(UploadVolumeImage(volume.id, row.id, disk_format))
        return {"id": volume.id, "updated_at": isotime(now, micro=True), "status": UPLOADING,
                "display_description": volume.description, "size": volume.size,
                "volume_type": {"name": volume.volume_type}, "image_id": row.id,
                "container_format": container_format, "disk_format": disk_format, "image_name": row.name,
                "protected": protected, "visibility": visibility}

    def _source(self, volume: Volume) -> tuple[Path | None, int]:
        """The volume's file (None: blank, zeros) and its size in bytes."""
        name = volume_name(volume.workspace)
        path = self.layout.pool / name
        if path.is_file():
            return path, volume.size * GIB
        uri = self.uri_of(volume)
        if is_simulated(uri):
            record = content_record(uri, POOL_NAME, name)
            held = Path(record.url.removeprefix("file://")) if record else None
            return (held if held is not None and held.is_file() else None), volume.size * GIB
        raise ProvisionError(f"volume {volume.id}: {path} is not a file on this host")

    def run(self, job: UploadVolumeImage) -> None:
        """Copy the volume into the image, make it active; the volume is available again."""
        row = self.images.rows.get(job.image_id)
        volume = self.store.volumes.get(job.volume_id)
        if volume is None or row is None:
            if volume is not None:
                self.store.change(volume.id, status=AVAILABLE)
            return  # the image was deleted meanwhile: nothing to fill
        self.images.rows.update(replace(row, status=SAVING, updated=time.time()))
        source, size = self._source(volume)
        self.layout.images.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".upload-", dir=self.layout.images) as scratch:
            if shutil.disk_usage(scratch).free < size + RESERVE_BYTES:
                raise ProvisionError(f"{self.layout.images}: copying volume {volume.id} needs up to {size} bytes")
            data = Path(scratch) / f"volume.{job.disk_format}"
            if source is None:
                _qemu_img(volume, "create", "-q", "-f", job.disk_format, str(data), str(size))
            else:
                _qemu_img(volume, "convert", "-U", "-O", job.disk_format, str(source), str(data))
                if _virtual_size(volume, data) < size:  # a simulated volume's content: its image, then zeros
                    _qemu_img(volume, "resize", "-q", "-f", job.disk_format, str(data), str(size))
            try:
                with data.open("rb") as stream:
                    # Stored as volume-<image id>: Cinder's image names (any 255 characters) are no store names.
                    record = self.images.store.import_stream(
                        f"volume-{row.id}", stream, f"cinder:{volume.id}", compute=DIGESTS, image_id=row.id,
                        visibility=row.visibility, owner=row.project_id)
            except (ImageError, InputError) as exc:
                raise ProvisionError(f"importing the volume into the image store failed: {exc}") from None
        current = self.images.rows.get(row.id) or row
        self.images.rows.update(replace(current, status=IMAGE_ACTIVE, record_id=record.id, updated=time.time()))
        self.store.change(volume.id, status=AVAILABLE)

    def failed(self, job: UploadVolumeImage, reason: str) -> None:
        """The image is killed; the volume is available, with the reason as a user message."""
        row = self.images.rows.get(job.image_id)
        if row is not None:
            self.images.rows.update(replace(row, status=KILLED, updated=time.time()))
        changed = self.store.change(job.volume_id, status=AVAILABLE)
        if changed is not None:
            self.store.messages.record(changed.project_id, messages.VOLUME, changed.id, messages.COPY_VOLUME_TO_IMAGE,
                                       f"image {job.image_id}: {reason}")
