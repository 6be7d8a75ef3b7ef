"""A domain's snapshots: `<workspace>/snapshots/<name>/`, a manifest.json and one file per disk.

A snapshot is copied into `.partial-<name>` and renamed into place once every
file and the manifest are written, so a failure (a full disk, an interrupt)
leaves no half snapshot: the partial directory is removed, or the next
snapshot of the domain removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from provisioner.errors import InputError, ProvisionError
from provisioner.excerpt import cut

MANIFEST = "manifest.json"
PARTIAL = ".partial-"
DELETING = ".deleting-"
CHUNK = 1 << 20
# Beyond the disks' bytes, room for the manifest and the plan copies (and not to fill the disk to its last block).
RESERVE_BYTES = 1 << 20
MAX_ENV = "PROVISION_SNAPSHOTS_MAX"
DEFAULT_MAX = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def validate_name(name: str) -> str:
    """Return `name` if it can name a snapshot (a directory name), else raise InputError."""
    if not _NAME.fullmatch(name):
        raise InputError("snapshot name", f"{cut(name)} is not valid: use 1 to 64 letters, digits, '.', '_' "
                                          "or '-', starting with a letter or digit")
    return name


def max_per_domain() -> int:
    """How many snapshots a domain may keep (PROVISION_SNAPSHOTS_MAX, default 10)."""
    raw = os.environ.get(MAX_ENV, "")
    if not raw:
        return DEFAULT_MAX
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(MAX_ENV, f"{cut(raw)} is not a positive integer")
    return int(raw)


def default_name() -> str:
    """A name from the UTC time, e.g. 20261206T061500Z."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@dataclass(frozen=True)
class DiskCopy:
    """One disk in a snapshot: where it was, and the file holding its bytes (None: it had none)."""

    target: str
    volume: str | None
    path: str
    file: str | None
    size: int
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"target": self.target, "volume": self.volume, "path": self.path, "file": self.file,
                "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Snapshot:
    """A complete snapshot of a domain, as its manifest records it."""

    name: str
    domain: str
    created: str
    libvirt_uri: str
    was_running: bool
    disks: tuple[DiskCopy, ...]
    directory: Path = field(compare=False)

    @property
    def size(self) -> int:
        """Bytes of all its disk copies."""
        return sum(d.size for d in self.disks)

    def to_json(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"name": self.name, "domain": self.domain, "created": self.created,
                "libvirt_uri": self.libvirt_uri, "was_running": self.was_running,
                "disks": [d.to_json() for d in self.disks]}

    @classmethod
    def load(cls, directory: Path) -> "Snapshot":
        """Read `directory`/manifest.json; ProvisionError naming the file if it is unreadable."""
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text())
            disks = tuple(DiskCopy(**d) for d in data["disks"])
            return cls(data["name"], data["domain"], data["created"], data["libvirt_uri"],
                       bool(data["was_running"]), disks, directory)
        except FileNotFoundError:
            raise ProvisionError(f"{path}: missing; the snapshot is incomplete (delete it)") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ProvisionError(f"{path}: not a snapshot manifest ({type(exc).__name__})") from None


def copy_hashed(source: Path, destination: Path) -> tuple[int, str]:
    """Copy `source` to a new file `destination` (0600, fsynced); its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, \
            os.fdopen(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600),
                      "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class SnapshotStore:
    """The snapshots/ directory of one domain's workspace."""

    def __init__(self, workspace: Path, domain: str):
        self.domain = domain
        self.workspace = workspace
        self.directory = workspace / "snapshots"

    def snapshots(self) -> list[Snapshot]:
        """Every complete snapshot, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [Snapshot.load(d) for d in self.directory.iterdir()
                 if d.is_dir() and not d.name.startswith(".")]
        return sorted(found, key=lambda s: (s.created, s.name))

    def get(self, name: str) -> Snapshot:
        """The snapshot `name`; ProvisionError listing how to see them if there is none."""
        validate_name(name)
        directory = self.directory / name
        if not directory.is_dir():
            raise ProvisionError(f"domain {self.domain} has no snapshot {name!r} "
                                 f"(`provision snapshots {self.domain}` lists them)")
        return Snapshot.load(directory)

    def check_room(self, name: str, sizes: Iterable[int]) -> None:
        """Refuse a new snapshot `name` that exists, is one too many, or would not fit on the filesystem."""
        validate_name(name)
        if (self.directory / name).exists():
            raise ProvisionError(f"domain {self.domain} already has a snapshot {name!r}: choose another name "
                                 f"or `provision snapshot-delete {self.domain} {name}`")
        limit = max_per_domain()
        if len(self.snapshots()) >= limit:
            raise ProvisionError(f"domain {self.domain} has {limit} snapshots, the most it may keep "
                                 f"({MAX_ENV}): delete one first (`provision snapshot-delete`)")
        needed = sum(sizes) + RESERVE_BYTES
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise ProvisionError(f"{self.directory}: a snapshot of {self.domain} needs {needed} bytes, only "
                                 f"{free} are free: make room and run the command again")

    def remove_partials(self) -> None:
        """Remove what an interrupted snapshot left (the caller holds the domain's lock)."""
        if self.directory.is_dir():
            for stale in [*self.directory.glob(PARTIAL + "*"), *self.directory.glob(DELETING + "*")]:
                shutil.rmtree(stale, ignore_errors=True)

    def partial(self, name: str) -> Path:
        """A fresh directory to build snapshot `name` in."""
        directory = self.directory / f"{PARTIAL}{name}"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700, parents=True)
        return directory

    def commit(self, partial: Path, snapshot: Snapshot) -> Snapshot:
        """Write the manifest into `partial` and rename it to the snapshot's name."""
        manifest = partial / MANIFEST
        with os.fdopen(os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as stream:
            json.dump(snapshot.to_json(), stream, indent=2)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        final = self.directory / snapshot.name
        os.rename(partial, final)
        return Snapshot.load(final)

    def delete(self, name: str) -> Snapshot:
        """Remove snapshot `name` (renamed aside first, so it never shows half-deleted)."""
        snapshot = self.get(name)
        aside = self.directory / f"{DELETING}{name}"
        os.rename(snapshot.directory, aside)
        shutil.rmtree(aside)
        return snapshot
