"""Glance images: the store's versions, plus the API's own rows for images created through Glance.

An image created with `POST /images` is a row (status queued) until its data
is uploaded; the upload imports it into the store under the same id. Store
versions imported with `provision image import` have no row: they are public
and owned by nobody (an admin may delete them).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Callable

from api.db import Database, Table
from api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from api.identity.tokens import Token
from api.image.image_tasks import ImageTaskLog
from api.image.members import Members
from provisioner.errors import InputError
from provisioner.excerpt import cut, describe
from provisioner.images import ImageError, ImageInUse, ImageNotFound, ImageRecord, ImageStore
from provisioner.images.names import check_name
from provisioner.layout import Layout

QUEUED, SAVING, ACTIVE, DEACTIVATED = "queued", "saving", "active", "deactivated"
UPLOADING = "uploading"  # staged for an import (Glance's interoperable import), not usable yet
# Deleted through the API while its version backs a server's disk: hidden, the version kept until no server
# uses it (Glance's delayed delete; a real Nova keeps its own copy of the image, here the disk is backed by it).
PENDING_DELETE = "pending_delete"
# Glance's "the image is not readable": what an image whose store file was deleted by hand is.
# ("deactivated" would say an admin can still read it; "deleted", that it goes away by itself.)
KILLED = "killed"
DIGESTS = ("md5", "sha512")  # Glance's checksum and os_hash_value


@dataclass(frozen=True)
class ImageRow:
    """What Glance knows of an image beyond the store: owner, visibility, declared formats, properties."""

    id: str
    name: str | None
    project_id: str
    visibility: str
    disk_format: str | None
    container_format: str | None
    properties: dict[str, str] = field(default_factory=dict)
    status: str = QUEUED
    record_id: str | None = None
    created: float = 0.0
    updated: float = 0.0
    tags: list[str] = field(default_factory=list)
    protected: bool = False
    os_hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0


@dataclass(frozen=True)
class Image:
    """One Glance image: a row, a store version, or both."""

    row: ImageRow | None
    record: ImageRecord | None

    @property
    def id(self) -> str:
        return self.row.id if self.row else self.record.id

    @property
    def owner(self) -> str | None:
        return self.row.project_id if self.row else self.record.owner

    @property
    def status(self) -> str:
        """Glance's status: the row's, ACTIVE for a store version, KILLED whatever the row says once the
        version's file is gone."""
        if self.record is not None and self.record.missing:
            return KILLED
        return self.row.status if self.row else ACTIVE

    @property
    def visibility(self) -> str:
        return self.row.visibility if self.row else (self.record.visibility or "public")

    def visible_to(self, token: Token) -> bool:
        """Public and community images to everyone; the others to their owner and admins."""
        return token.is_admin or self.visibility in ("public", "community") or self.owner == token.project_id


def image_error(exc: ImageError | InputError) -> ApiError:
    """The API error for a store failure."""
    if isinstance(exc, ImageInUse):
        return Conflict(str(exc))
    if isinstance(exc, ImageNotFound):
        return NotFound(str(exc))
    if isinstance(exc, InputError):
        return BadRequest("", str(exc))
    return BadRequest("image data", str(exc))


class ImageCatalog:
    """The images a token may see and change."""

    def __init__(self, layout: Layout, db: Database):
        self.store = ImageStore(layout)
        self.rows = Table(db, "images", ImageRow)
        self.members = Members(db)
        self.tasks = ImageTaskLog(db)

    def all(self) -> list[Image]:
        """Every image: rows (with their version once uploaded), then store versions without a row."""
        records = {r.id: r for r in self.store.list()}
        images, covered = [], set()
        for row in self.rows.list():
            record = records.get(row.record_id) if row.record_id else None
            if row.status == PENDING_DELETE:
                covered.update({row.id, row.record_id})  # its version is not a store image of its own
                continue
            if row.status in (ACTIVE, DEACTIVATED) and record is None:
                continue  # its version was deleted outside the API
            covered.update({row.id, row.record_id})
            images.append(Image(row, record))
        images.extend(Image(None, r) for r in records.values() if r.id not in covered)
        return images

    def visible(self, token: Token) -> list[Image]:
        """The images `token` may see: also shared images it is a member of, whatever its member status."""
        shared_with = self.members.of_project(token.project_id)
        return [i for i in self.all()
                if i.visible_to(token) or (i.visibility == "shared" and i.id in shared_with)]

    def get(self, token: Token, image_id: str) -> Image:
        """An image `token` may see; NotFound otherwise."""
        found = next((i for i in self.visible(token) if i.id == image_id), None)
        if found is None:
            raise NotFound(f"No image found with ID {image_id}")
        return found

    def record(self, token: Token, image_id: str) -> ImageRecord:
        """The store version behind an image `token` may see; NotFound if none (or no data yet), Forbidden
        while deactivated (but to admins), Conflict while only staged and once its file is gone."""
        image = self.get(token, image_id)
        if image.record is None:
            raise NotFound(f"Image {image_id} has no data yet")
        if image.row is not None and image.row.status == UPLOADING:
            raise Conflict(f"Image {image_id} is uploading: its staged data is usable once imported")
        if image.row is not None and image.row.status == DEACTIVATED and not token.is_admin:
            raise Forbidden(f"Image {image_id} is deactivated: its data cannot be read")
        if image.record.missing:
            raise Conflict(f"Image {image_id} is killed: its data is gone from the image store; "
                           "an operator must reimport it")
        return image.record

    def _own(self, token: Token, image_id: str) -> Image:
        image = self.get(token, image_id)
        if not token.is_admin and image.owner != token.project_id:
            raise Forbidden(f"You are not permitted to modify image {image_id}")
        return image

    def shareable(self, token: Token, image_id: str) -> Image:
        """An image whose members `token` may change: its own (or an admin's), of visibility shared."""
        image = self._own(token, image_id)
        if image.visibility != "shared":
            raise Forbidden(f"Image {image_id} is {image.visibility}: only shared images have members")
        return image

    def create(self, token: Token, body: dict[str, Any]) -> Image:
        """A queued image row; `body` is the request (already checked for types by the resource)."""
        name = body.get("name")  # Glance's name is optional
        try:
            if name is not None:
                check_name(name)
        except InputError as exc:
            raise BadRequest("name", exc.message) from None
        visibility = body.get("visibility") or "shared"
        if visibility in ("public", "community") and not token.is_admin:
            raise Forbidden(f"creating a {visibility} image requires the admin role")
        image_id = body.get("id") or str(uuid.uuid4())
        try:
            image_id = str(uuid.UUID(image_id))
        except ValueError:
            raise BadRequest("id", f"{describe(image_id)} is not a UUID") from None
        # A deleted image whose version a server still uses keeps its row (and id) until reclaimed.
        if self.rows.get(image_id) is not None or any(i.id == image_id for i in self.all()):
            raise Conflict(f"Image with identifier {image_id} already exists")
        now = time.time()
        owner = body.get("owner") or token.project_id  # only an admin's request carries one
        row = ImageRow(id=image_id, name=name, project_id=owner, visibility=visibility,
                       disk_format=body.get("disk_format"), container_format=body.get("container_format"),
                       properties=body["properties"], created=now, updated=now,
                       tags=list(dict.fromkeys(body.get("tags") or [])), protected=bool(body.get("protected")),
                       os_hidden=bool(body.get("os_hidden")), min_disk=body.get("min_disk") or 0,
                       min_ram=body.get("min_ram") or 0)
        return Image(self.rows.insert(row), None)

    def upload(self, token: Token, image_id: str, stream: BinaryIO, length: int | None) -> Image:
        """Import the uploaded data into the store as this image's version."""
        return self._receive(token, image_id, stream, length, ACTIVE)

    def stage(self, token: Token, image_id: str, stream: BinaryIO, length: int | None) -> Image:
        """Glance's stage (interoperable import, step one): the data goes into the store as the image's
        version, but the image stays `uploading` (not usable) until `import_staged`."""
        return self._receive(token, image_id, stream, length, UPLOADING)

    def import_staged(self, token: Token, image_id: str) -> Image:
        """glance-direct (step two): a staged image becomes active; Conflict if nothing is staged."""
        image = self._own(token, image_id)
        if image.row is None or image.row.status != UPLOADING:
            raise Conflict(f"Image {image_id} is {image.status}: it needs to be staged before the "
                           "'glance-direct' method can be used")
        return Image(self.rows.update(replace(image.row, status=ACTIVE, updated=time.time())), image.record)

    def _receive(self, token: Token, image_id: str, stream: BinaryIO, length: int | None, status: str) -> Image:
        """Stream data into the store as the version of a queued image, which ends `status`."""
        image = self._own(token, image_id)
        row = image.row
        if row is None or row.status != QUEUED:
            raise Conflict(f"Image {image_id} already has data (status {row.status if row else ACTIVE})")
        self.rows.update(replace(row, status=SAVING, updated=time.time()))
        try:
            # The store files versions by name: a nameless image's data goes under one of its own.
            record = self.store.import_stream(row.name or f"glance-{row.id}", stream, f"glance:{row.id}", size_hint=length,
                                              compute=DIGESTS, image_id=row.id, visibility=row.visibility,
                                              owner=row.project_id, **row.properties)
        except (ImageError, InputError) as exc:
            self.rows.update(replace(row, status=QUEUED, updated=time.time()))
            raise image_error(exc) from None
        if row.disk_format not in (None, record.format):
            if record.id == row.id:
                self.store.delete(record.id)
            self.rows.update(replace(row, status=QUEUED, updated=time.time()))
            raise BadRequest("disk_format", f"declared {row.disk_format}, but the data is {record.format}")
        done = self.rows.update(replace(row, status=status, record_id=record.id, updated=time.time()))
        return Image(done, record)

    def _own_row(self, token: Token, image_id: str) -> ImageRow:
        image = self._own(token, image_id)
        if image.row is None:
            raise Forbidden(f"Image {image_id} was imported with `provision image import`: change it there")
        return image.row

    def update(self, token: Token, image_id: str, change: Callable[[ImageRow], ImageRow]) -> Image:
        """Replace the row of an image `token` owns by `change(row)` (which raises on a refused change)."""
        row = self._own_row(token, image_id)
        done = self.rows.update(replace(change(row), updated=time.time()))
        return Image(done, self.get(token, image_id).record)

    def add_tag(self, token: Token, image_id: str, tag: str) -> None:
        """Tag an image (a tag it has already is kept once)."""
        self.update(token, image_id, lambda row: replace(row, tags=list(dict.fromkeys([*row.tags, tag]))))

    def remove_tag(self, token: Token, image_id: str, tag: str) -> None:
        """Untag an image; NotFound if it has no such tag."""
        def without(row: ImageRow) -> ImageRow:
            if tag not in row.tags:
                raise NotFound(f"Tag {cut(tag)} not found on image {image_id}")
            return replace(row, tags=[t for t in row.tags if t != tag])
        self.update(token, image_id, without)

    def set_active(self, token: Token, image_id: str, active: bool) -> None:
        """Reactivate or deactivate an image with data (its owner or an admin, as Glance's default policy)."""
        def switch(row: ImageRow) -> ImageRow:
            if row.status not in (ACTIVE, DEACTIVATED):
                raise Forbidden(f"Image {image_id} is {row.status}: only active images can be "
                                f"{'reactivated' if active else 'deactivated'}")
            return replace(row, status=ACTIVE if active else DEACTIVATED)
        self.update(token, image_id, switch)

    def delete(self, token: Token, image_id: str) -> None:
        """Delete the image and its store version (403 while protected). A version that backs a server stays,
        hidden, until no server uses it (409 for a store image without a row: `provision image import`'s)."""
        image = self._own(token, image_id)
        if image.row is not None and image.row.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        record = image.record
        shared = record is not None and any(
            i.row and i.row.record_id == record.id and i.id != image.id for i in self.all())
        # A row whose data is another version (a server snapshot holding exactly its image's bytes, an upload
        # of a name's current content) does not own that version: deleting the row leaves it.
        borrowed = record is not None and image.row is not None and record.id != image.row.id
        self.reclaim()
        self.members.drop_image(image.id)
        self.tasks.drop_image(image.id)
        if record is not None and not shared and not borrowed:
            try:
                self.store.delete(record.id)
            except ImageInUse as exc:
                if image.row is None:  # an operator's `provision image import`: theirs to retire
                    raise image_error(exc) from None
                self.rows.update(replace(image.row, status=PENDING_DELETE, updated=time.time()))
                return
            except (ImageError, InputError) as exc:
                raise image_error(exc) from None
        if image.row is not None:
            self.rows.delete(image.row.id)

    def reclaim(self) -> None:
        """Delete the versions of images deleted while servers used them, once none does (run at each
        image delete, as Glance's scrubber runs now and then)."""
        rows = self.rows.list()
        # A version another image still names (a snapshot holding the same bytes) stays with that image.
        named = {r.record_id for r in rows if r.status != PENDING_DELETE}
        for row in rows:
            if row.status != PENDING_DELETE:
                continue
            try:
                if row.record_id is not None and row.record_id not in named:
                    self.store.delete(row.record_id)
            except ImageInUse:
                continue
            except ImageNotFound:
                pass  # gone already (deleted outside the API)
            self.rows.delete(row.id)
