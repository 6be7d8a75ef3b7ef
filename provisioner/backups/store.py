"""The stored versions of a domain's site backups: `<root>/backups/<domain>/`.

Each version is `<UTC time>-<sha256[:12]>.tar.gz` and its manifest
`<same>.json` (full sha256, size, the job's exit status and log, when). The
manifest is written last: a version exists once its manifest does, so a crash
mid-store leaves at most a `.partial-*` file, never a listed half version.
Directories 0700, files 0600; changes hold the directory's `.lock`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from provisioner.backups.errors import BackupCorrupt, NoSuchVersion
from provisioner.errors import ProvisionError
from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.workspace import write_atomic

ARCHIVE_SUFFIX = ".tar.gz"
MANIFEST_SUFFIX = ".json"
LATEST = "latest"
VERSION_NAME = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}")
MAX_DOWNLOAD_BYTES = 2 * 1024**3
"""Default cap on a backup archive brought back from a guest (env PROVISION_BACKUP_MAX_BYTES)."""
MAX_BYTES_ENV = "PROVISION_BACKUP_MAX_BYTES"
_CHUNK = 1024 * 1024


def max_download_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The download cap: PROVISION_BACKUP_MAX_BYTES, else MAX_DOWNLOAD_BYTES."""
    raw = (os.environ if environ is None else environ).get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return MAX_DOWNLOAD_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ProvisionError(f"{MAX_BYTES_ENV}: must be a positive integer (bytes)")
    return int(raw)


def backups_dir(layout: Layout) -> Path:
    """Where every domain's backups live."""
    return layout.root / "backups"


@dataclass(frozen=True)
class Version:
    """One stored backup, as its manifest records it."""

    name: str
    domain: str
    created: float
    sha256: str
    size: int
    exit_status: int
    log_path: str
    job_id: int
    job_token: str

    def to_json(self) -> dict[str, object]:
        """The manifest's content."""
        return asdict(self)

    @property
    def created_utc(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.created))


class HashingWriter:
    """Writes to a file while computing its sha256 and size."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.stream.write(data)

    def flush(self) -> None:
        """Push what was written to the file (before it is read back or moved)."""
        self.stream.flush()


class BackupStore:
    """One domain's versions."""

    def __init__(self, directory: Path, domain: str):
        self.directory = directory
        self.domain = domain

    @classmethod
    def of(cls, layout: Layout, domain: str) -> BackupStore:
        """The store of `domain` (a validated name) under `layout`'s root."""
        return cls(backups_dir(layout) / domain, domain)

    def archive(self, name: str) -> Path:
        return self.directory / f"{name}{ARCHIVE_SUFFIX}"

    def manifest(self, name: str) -> Path:
        return self.directory / f"{name}{MANIFEST_SUFFIX}"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (storing, rotating and restoring never overlap)."""
        self._make_dirs()
        with exclusive(self.directory / ".lock", f"the backups of {self.domain}"):
            yield

    def _make_dirs(self) -> None:
        for directory in (self.directory.parent, self.directory):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)

    @contextmanager
    def staging(self) -> Iterator[tuple[Path, HashingWriter]]:
        """A private `.partial-*` file in the store to download into; removed unless store() took it."""
        self._make_dirs()
        path = self.directory / f".partial-{secrets.token_hex(6)}{ARCHIVE_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as stream:
                yield path, HashingWriter(stream)
        finally:
            path.unlink(missing_ok=True)

    def versions(self) -> list[Version]:
        """Every stored version, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [self._read_manifest(path) for path in self.directory.glob(f"*{MANIFEST_SUFFIX}")
                 if VERSION_NAME.fullmatch(path.name[:-len(MANIFEST_SUFFIX)])]
        return sorted(found, key=lambda v: (v.created, v.name))

    def _read_manifest(self, path: Path) -> Version:
        try:
            data = json.loads(path.read_text())
            version = Version(**{name: data[name] for name in Version.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackupCorrupt(f"{path}: unreadable backup manifest ({type(exc).__name__}): "
                                "remove the version's two files by hand") from None
        if version.name != path.name[:-len(MANIFEST_SUFFIX)]:
            raise BackupCorrupt(f"{path}: the manifest names another version")
        return version

    def by_job(self, token: str) -> Version | None:
        """The version a job already stored (a resumed job must not store it twice)."""
        return next((v for v in self.versions() if v.job_token == token), None)

    def find(self, name: str) -> Version:
        """The version called `name`, or the newest for `latest`; NoSuchVersion naming it otherwise."""
        versions = self.versions()
        if name == LATEST:
            if not versions:
                raise NoSuchVersion(str(self.directory), f"no backups of {self.domain} yet "
                                    f"(`provision backup {self.domain}` makes one)")
            return versions[-1]
        for version in versions:
            if version.name == name:
                return version
        shown = repr(name[:40]) + ("…" if len(name) > 40 else "")
        raise NoSuchVersion(str(self.directory), f"no backup version {shown} of {self.domain} "
                            f"(`provision backups {self.domain}` lists them)")

    def store(self, staged: Path, sha256: str, size: int, exit_status: int, log_path: str,
              job_id: int, job_token: str, keep: int) -> tuple[Version, list[str]]:
        """Move a checked download into place, write its manifest, then keep the `keep` newest.

        Returns the version and the names of the versions removed.
        """
        created = time.time()
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{sha256[:12]}"
        version = Version(name, self.domain, created, sha256, size, exit_status, log_path, job_id, job_token)
        with self.locked():
            os.chmod(staged, 0o600)
            os.replace(staged, self.archive(name))
            write_atomic(self.manifest(name), (json.dumps(version.to_json(), indent=2) + "\n").encode())
            removed = self._rotate(keep)
        return version, removed

    def _rotate(self, keep: int) -> list[str]:
        """Remove all but the `keep` newest versions (manifest first: the version is gone at once)."""
        versions = self.versions()
        removed = versions[:max(0, len(versions) - keep)]
        for version in removed:
            self.manifest(version.name).unlink(missing_ok=True)
            self.archive(version.name).unlink(missing_ok=True)
        return [v.name for v in removed]

    def copy_verified(self, version: Version, target: Path) -> None:
        """Copy `version`'s archive to `target` (a new file), checking its size and sha256 on the way.

        BackupCorrupt naming the version on a mismatch or a missing file; then
        `target` is removed. Hold locked() around it.
        """
        source = self.archive(version.name)
        digest = hashlib.sha256()
        size = 0
        try:
            stream = open(source, "rb")
        except FileNotFoundError:
            raise BackupCorrupt(f"backup {version.name} of {self.domain}: its archive {source} is missing: "
                                "refused") from None
        with stream, open(target, "xb") as out:
            try:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
        if size != version.size or digest.hexdigest() != version.sha256 or \
                not version.name.endswith(version.sha256[:12]):
            target.unlink(missing_ok=True)
            raise BackupCorrupt(f"backup {version.name} of {self.domain} is corrupt: {source} does not match "
                                f"its manifest (size {size} for {version.size}, or another sha256): refused")
