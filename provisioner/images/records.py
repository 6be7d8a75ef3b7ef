"""ImageRecord: one version of one image, as the store's index keeps it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from provisioner.images.names import slug
from provisioner.spec.model import ImageRef

VISIBILITIES = ("public", "private", "shared", "community")  # Glance v2's


@dataclass(frozen=True)
class ImageRecord:
    """One immutable version of an image in the store.

    `path` is the version's own file, which never changes content; digests not
    computed at import are None (sha256 always is: it identifies the content).
    `current` marks the newest version of its name; `missing`, a version whose
    file is gone (deleted by hand). Both are found when the index is read, never stored.
    """

    id: str
    name: str
    version: int
    path: Path
    format: str
    size: int
    virtual_size: int
    sha256: str
    source: str
    imported_at: str
    md5: str | None = None
    sha1: str | None = None
    sha512: str | None = None
    visibility: str | None = None
    owner: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    current: bool = False
    missing: bool = False

    @property
    def checksum(self) -> str | None:
        """Glance's `checksum` (md5)."""
        return self.md5

    @property
    def os_hash_algo(self) -> str | None:
        """Glance's `os_hash_algo`: sha512 when known."""
        return "sha512" if self.sha512 else None

    @property
    def os_hash_value(self) -> str | None:
        """Glance's `os_hash_value`: the sha512 digest."""
        return self.sha512

    def digests(self) -> dict[str, str]:
        """Every known digest, by algorithm."""
        known = {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256, "sha512": self.sha512}
        return {a: v for a, v in known.items() if v}

    def with_digests(self, digests: Mapping[str, str]) -> ImageRecord:
        """This record with missing digests filled in from `digests`."""
        missing = {a: v for a, v in digests.items() if a in ("md5", "sha1", "sha512") and not getattr(self, a)}
        return replace(self, **missing) if missing else self

    def reimport_command(self) -> str:
        """The command that brings a missing version's file back: its source if that can be read again."""
        source = self.source if self.source.startswith(("/", "http://", "https://")) else "FILE"
        return f"provision image import {shlex.quote(source)} --name {self.name}"

    def to_image_ref(self) -> ImageRef:
        """The ImageRef a domain spec uses to back its disk with this version."""
        return ImageRef(str(self.path), self.format, self.sha256, slug(self.name))

    def to_json(self) -> dict[str, Any]:
        """The index entry (the file is stored relative to the store directory)."""
        return {
            "id": self.id, "name": self.name, "version": self.version, "file": self.path.name,
            "format": self.format, "size": self.size, "virtual_size": self.virtual_size,
            "md5": self.md5, "sha1": self.sha1, "sha256": self.sha256, "sha512": self.sha512,
            "source": self.source, "imported_at": self.imported_at,
            "visibility": self.visibility, "owner": self.owner, "properties": dict(self.properties),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], directory: Path) -> ImageRecord:
        """Read an index entry back; raises KeyError/TypeError/ValueError when malformed."""
        if "/" in data["file"] or data["file"].startswith("."):
            raise ValueError(f"bad file name {data['file']!r}")
        return cls(
            id=str(data["id"]), name=str(data["name"]), version=int(data["version"]),
            path=directory / data["file"], format=str(data["format"]), size=int(data["size"]),
            virtual_size=int(data["virtual_size"]), sha256=str(data["sha256"]),
            source=str(data["source"]), imported_at=str(data["imported_at"]),
            md5=data.get("md5"), sha1=data.get("sha1"), sha512=data.get("sha512"),
            visibility=data.get("visibility"), owner=data.get("owner"),
            properties=dict(data.get("properties") or {}),
        )
