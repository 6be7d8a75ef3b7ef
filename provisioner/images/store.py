"""The image store under `<root>/images`: immutable versions, their index, their users.

Writers stream into a temporary file in the store directory, verify it, then
take the store lock only to rename it into place and rewrite index.json, so
a long download never blocks other imports and a failure leaves nothing behind.
Readers read index.json (always replaced atomically) without the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

from provisioner.images.digests import ALGORITHMS, check_algorithms, parse_expected, verify
from provisioner.images.errors import ImageInputError, ImageInUse, ImageMissing, ImageNotFound, StoreError
from provisioner.images.fetch import open_source
from provisioner.images.formats import FORMATS
from provisioner.images.names import check_name, default_name, is_valid_name
from provisioner.images.records import VISIBILITIES, ImageRecord
from provisioner.images.transfer import Transferred, transfer
from provisioner.images.usage import ImageUse, image_uses
from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.progress import Progress
from provisioner.workspace import write_atomic

INDEX = "index.json"
LOCK = ".lock"
PARTIAL = ".partial-"
# A partial file nobody holds a lock on, older than this, was left by a killed import.
STALE_PARTIAL = 60.0
INDEX_FORMAT = 1

# Aliases: inside ImageStore, `list` is the method of that name, not the type.
Records = list[ImageRecord]
Names = list[str]


class ImageStore:
    """Base images under `layout.images`, each name with its versions (see docs/images.md)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.directory = layout.images
        self.index_path = self.directory / INDEX

    # -- reading -----------------------------------------------------------

    def list(self) -> Records:
        """Every version of every image, by name then version (oldest first)."""
        return self._read()

    def versions(self, name: str) -> Records:
        """The versions of `name`, oldest first; empty if there is no such image."""
        check_name(name)
        return [r for r in self._read() if r.name == name]

    def get(self, name: str) -> ImageRecord:
        """The current version of `name`; ImageNotFound if there is none."""
        versions = self.versions(name)
        if not versions:
            raise ImageNotFound(name, f"no such image in {self.directory} "
                                      f"(import it with: provision image import SOURCE --name {name})")
        return versions[-1]

    def lookup(self, value: str) -> ImageRecord | None:
        """The current version of the image named `value`, or None if `value` names none.

        Never raises for a path or a URL: that is how provision.conf's `image`
        key tells an imported image's name from a file or a URL.
        """
        if not is_valid_name(value):
            return None
        versions = [r for r in self._read() if r.name == value]
        return versions[-1] if versions else None

    def present(self, record: ImageRecord) -> ImageRecord:
        """`record` if its file is there; ImageMissing, saying which file is gone and how to get it back, if not."""
        if record.missing:
            raise ImageMissing(record.name, f"version {record.version}'s file {record.path} is gone (deleted by "
                                            f"hand?); reimport it with: {record.reimport_command()}")
        return record

    def get_by_id(self, image_id: str) -> ImageRecord:
        """The version with id `image_id`; ImageNotFound if there is none."""
        for record in self._read():
            if record.id == image_id:
                return record
        raise ImageNotFound(image_id, f"no image version with this id in {self.directory}")

    def used_by(self) -> dict[str, Names]:
        """For each version in use, its id mapped to the domains it backs."""
        return self._used_by(self._read(), image_uses(self.layout))

    def in_use(self) -> set[str]:
        """The sha256 digests of the versions some domain uses."""
        records = {r.id: r for r in self._read()}
        return {records[i].sha256 for i in self._used_by(records.values(), image_uses(self.layout))}

    # -- importing ---------------------------------------------------------

    def import_source(self, source: str, name: str | None = None, digests: Mapping[str, str] | None = None,
                      dry_run: bool = False, progress: Progress | None = None, **metadata: str) -> ImageRecord:
        """Import a local file or an http(s) URL as `name` (default: from its file name).

        When every digest given is already the current version's, nothing is
        downloaded. Otherwise see import_stream. `progress` shows the bytes
        copied as `import NAME` (None: nothing is printed).
        """
        name = default_name(source) if name is None else check_name(name)
        expected = parse_expected(name, digests or {})
        if expected and not dry_run:
            current = self.lookup(name)
            if current and not current.missing and all(current.digests().get(a) == v for a, v in expected.items()):
                return current
        with open_source(source, name) as opened, \
                (progress.transfer(f"import {name}", opened.size) if progress else nullcontext(None)) as on_bytes:
            return self.import_stream(name, opened.stream, opened.source, expected, dry_run,
                                      opened.size, on_bytes=on_bytes, **metadata)

    def import_stream(self, name: str, stream: BinaryIO, source: str,
                      digests: Mapping[str, str] | None = None, dry_run: bool = False,
                      size_hint: int | None = None, compute: Iterable[str] = (),
                      image_id: str | None = None, on_bytes: Callable[[int], None] | None = None,
                      **metadata: str) -> ImageRecord:
        """Import the content of a binary stream as a new version of `name`.

        `size_hint` is the exact length when known (a Content-Length): no more
        is read, and less is a truncation. Every digest in `digests` must match
        or nothing is kept; sha256 and the algorithms in `compute` are computed
        too (Glance uploads want md5 and sha512). If the content is the current
        version's, no version is added and the current record is returned
        (its file put back if it had gone missing).
        `image_id` (a UUID) is the new version's id, generated if None.
        `metadata`: `visibility` and `owner`, any other key becomes a property.
        `on_bytes` is called with the bytes read so far after each chunk.
        With `dry_run`, the content is read and checked but nothing is written,
        and the record returned is the one the import would produce.
        """
        check_name(name)
        expected = parse_expected(name, digests or {})
        algorithms = check_algorithms([*expected, *compute])
        fields = _metadata(name, metadata)
        new_id = _check_id(name, image_id) if image_id is not None else str(uuid.uuid4())
        if dry_run:
            done = transfer(name, source, stream, None, algorithms, size_hint, on_bytes)
            verify(name, source, expected, done.digests)
            return self._outcome(self._read(), name, done, source, new_id, fields)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sweep_partials()
        fd, tmp = tempfile.mkstemp(prefix=f".{name}{PARTIAL}", dir=self.directory)
        try:
            # Held until closed: tells _sweep_partials in other processes this file is live.
            fcntl.flock(fd, fcntl.LOCK_EX)
            done = transfer(name, source, stream, fd, algorithms, size_hint, on_bytes)
            verify(name, source, expected, done.digests)
            os.fchmod(fd, 0o400)  # read-only; the provider copies it into the pool as this user
            os.fsync(fd)
            with self._locked():
                return self._commit(name, Path(tmp), done, source, new_id, fields)
        finally:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)

    def complete_digests(self, image_id: str, algorithms: Iterable[str] = ALGORITHMS) -> ImageRecord:
        """Compute the digests a version lacks (e.g. Glance's md5 and sha512) from its file.

        The file is re-read, so its sha256 is checked too: a corrupted file
        raises StoreError instead of getting digests of damaged content.
        """
        record = self.present(self.get_by_id(image_id))
        missing = [a for a in check_algorithms(algorithms) if a not in record.digests()]
        if not missing:
            return record
        with open_source(str(record.path), record.name) as opened:
            done = transfer(record.name, str(record.path), opened.stream, None, check_algorithms(missing),
                            opened.size)
        if done.digests["sha256"] != record.sha256:
            raise StoreError(record.name, f"{record.path} no longer has the sha256 recorded at import "
                                          f"({record.sha256}): the file is corrupted")
        with self._locked():
            records = self._read()
            updated = [r.with_digests(done.digests) if r.id == image_id else r for r in records]
            self._save(updated)
        return self.get_by_id(image_id)

    # -- removing ----------------------------------------------------------

    def delete(self, id_or_name: str) -> Records:
        """Delete one version (by id) or every version of an image (by name).

        Refused with ImageInUse, deleting nothing, if any of them backs a
        domain. Returns the versions deleted.
        """
        with self._locked():
            records = self._read()
            doomed = ([r for r in records if r.id == id_or_name]
                      or [r for r in records if r.name == id_or_name])
            if not doomed:
                raise ImageNotFound(id_or_name, f"no image name or version id like this in {self.directory}")
            used = self._used_by(doomed, image_uses(self.layout))
            if used:
                busy = ", ".join(f"version {r.version} ({r.id}) backs {', '.join(used[r.id])}"
                                 for r in doomed if r.id in used)
                raise ImageInUse(doomed[0].name, f"in use, not deleted: {busy}; destroy those "
                                                 "domains or render them with another image first")
            self._remove(records, doomed)
        return doomed

    def prune(self, name: str, keep: int) -> Records:
        """Delete versions of `name` older than the newest `keep`, except those in use.

        Returns the versions deleted; versions in use stay, whatever their age.
        """
        check_name(name)
        if keep < 1:
            raise ImageInputError(f"image {name!r}", f"--keep {keep}: keep at least 1 version "
                                                     "(the current one is never pruned)")
        with self._locked():
            records = self._read()
            versions = [r for r in records if r.name == name]
            if not versions:
                raise ImageNotFound(name, f"no such image in {self.directory}")
            old = versions[:-keep]
            used = self._used_by(old, image_uses(self.layout))
            doomed = [r for r in old if r.id not in used]
            self._remove(records, doomed)
        return doomed

    # -- internals ---------------------------------------------------------

    def _locked(self) -> AbstractContextManager[None]:
        return exclusive(self.directory / LOCK, f"image store {self.directory}")

    def _read(self) -> Records:
        try:
            data = json.loads(self.index_path.read_bytes())
            records = [ImageRecord.from_json(entry, self.directory) for entry in data["images"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(str(self.index_path), f"unreadable image index ({exc}); "
                                                   "restore it from a backup") from None
        records.sort(key=lambda r: (r.name, r.version))
        newest = {r.name: r.id for r in records}
        return [replace(r, current=newest[r.name] == r.id, missing=not r.path.is_file()) for r in records]

    def _save(self, records: Iterable[ImageRecord]) -> None:
        entries = [r.to_json() for r in sorted(records, key=lambda r: (r.name, r.version))]
        content = json.dumps({"format": INDEX_FORMAT, "images": entries}, indent=2) + "\n"
        write_atomic(self.index_path, content.encode())

    def _outcome(self, records: Records, name: str, done: Transferred, source: str,
                 new_id: str, fields: Mapping[str, Any]) -> ImageRecord:
        """The current version if it has this content, else the version to add."""
        versions = [r for r in records if r.name == name]
        if versions and versions[-1].sha256 == done.digests["sha256"]:
            return versions[-1].with_digests(done.digests)
        if any(r.id == new_id for r in records):
            raise ImageInputError(f"image {name!r}", f"id {new_id} is already taken")
        now = datetime.now(timezone.utc).replace(microsecond=0)
        return ImageRecord(
            id=new_id, name=name, version=versions[-1].version + 1 if versions else 1,
            path=self._version_path(records, name, now, done.info.format), format=done.info.format,
            size=done.size, virtual_size=done.info.virtual_size or done.size,
            sha256=done.digests["sha256"], md5=done.digests.get("md5"), sha1=done.digests.get("sha1"),
            sha512=done.digests.get("sha512"), source=source,
            imported_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), current=True, **fields,
        )

    def _commit(self, name: str, tmp: Path, done: Transferred, source: str, new_id: str,
                fields: Mapping[str, Any]) -> ImageRecord:
        records = self._read()
        record = self._outcome(records, name, done, source, new_id, fields)
        existing = [r for r in records if r.id == record.id]
        if existing:
            if record != existing[0]:
                self._save([record if r.id == record.id else r for r in records])
            if record.missing:
                # The same content as the version whose file was deleted by hand: it takes its place.
                os.replace(tmp, record.path)
                _sync_directory(self.directory)
                self._link_current(name, record)
                record = replace(record, missing=False)
            return record
        os.replace(tmp, record.path)
        _sync_directory(self.directory)
        self._save([*records, record])
        self._link_current(name, record)
        return record

    def _version_path(self, records: Records, name: str, when: datetime, fmt: str) -> Path:
        """`<name>@<import time>.<fmt>`, with a counter if that second is taken."""
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        taken = {r.path.name for r in records}
        candidate, counter = f"{name}@{stamp}.{fmt}", 1
        while candidate in taken or (self.directory / candidate).exists():
            counter += 1
            candidate = f"{name}@{stamp}-{counter}.{fmt}"
        return self.directory / candidate

    def _remove(self, records: Records, doomed: Records) -> None:
        """Drop `doomed` from the index, then their files (a crash leaves a stray file, never a dangling entry)."""
        if not doomed:
            return
        gone = {r.id for r in doomed}
        kept = [r for r in records if r.id not in gone]
        self._save(kept)
        for record in doomed:
            record.path.unlink(missing_ok=True)
        for name in {r.name for r in doomed}:
            versions = [r for r in kept if r.name == name]
            self._link_current(name, versions[-1] if versions else None)

    def _link_current(self, name: str, current: ImageRecord | None) -> None:
        """Point `<name>.<fmt>` at the current version's file (or remove it)."""
        for fmt in FORMATS:
            link = self.directory / f"{name}.{fmt}"
            if link.is_symlink() and (current is None or current.format != fmt):
                link.unlink()
        if current is not None:
            tmp = self.directory / f".{name}.link-{uuid.uuid4().hex}"
            os.symlink(current.path.name, tmp)
            os.replace(tmp, self.directory / f"{name}.{current.format}")

    def _sweep_partials(self) -> None:
        """Remove temporary files left by imports that were killed."""
        for path in self.directory.glob(f".*{PARTIAL}*"):
            try:
                if time.time() - path.stat().st_mtime < STALE_PARTIAL:
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
            except BlockingIOError:
                pass  # a live import holds it
            finally:
                os.close(fd)

    @staticmethod
    def _used_by(records: Iterable[ImageRecord], uses: Sequence[ImageUse]) -> dict[str, Names]:
        used = {}
        for record in records:
            domains = [u.domain for u in uses if u.uses(record.sha256, record.path)]
            if domains:
                used[record.id] = domains
        return used


def _metadata(name: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Split import metadata into the record's visibility, owner and properties."""
    properties = dict(metadata)
    visibility = properties.pop("visibility", None)
    owner = properties.pop("owner", None)
    if visibility is not None and visibility not in VISIBILITIES:
        raise ImageInputError(f"image {name!r}", f"visibility {visibility!r}: use one of {', '.join(VISIBILITIES)}")
    bad = [k for k, v in properties.items() if not isinstance(v, str)]
    if bad or (owner is not None and not isinstance(owner, str)):
        raise ImageInputError(f"image {name!r}", f"metadata {bad or ['owner']} must be text")
    return {"visibility": visibility, "owner": owner, "properties": properties}


def _check_id(name: str, image_id: str) -> str:
    try:
        return str(uuid.UUID(image_id))
    except (ValueError, TypeError, AttributeError):
        raise ImageInputError(f"image {name!r}", f"id {image_id!r} is not a UUID") from None


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
