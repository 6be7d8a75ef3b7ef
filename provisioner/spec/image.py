"""Resolving provision.conf's `image` into an ImageRef (source, format, digest)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from provisioner.errors import InputError
from provisioner.spec.model import ImageRef

QCOW2_MAGIC = b"QFI\xfb"


def resolve_image(value: str, fmt: str, base_dir: Path, where: str) -> ImageRef:
    """Turn an http(s) URL or a file path (relative to `base_dir`) into an ImageRef."""
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(value).netloc:
            raise InputError(where, f"key 'image': {value!r} is a URL without a host")
        # Not downloaded yet: the URL itself (with the format) identifies the volume.
        digest = hashlib.sha256(f"{fmt}:{value}".encode()).hexdigest()
        return ImageRef(value, "qcow2" if fmt == "auto" else fmt, digest, _slug(urlsplit(value).path))
    if scheme and len(scheme) > 1:
        raise InputError(where, f"key 'image': {value!r} is neither an http(s) URL nor a file")
    path = (base_dir / value).resolve()
    if not path.is_file():
        raise InputError(where, f"key 'image': {value!r} is neither an http(s) URL nor an existing file")
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        head = stream.read(4)
        sha.update(head)
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if fmt == "auto":
        fmt = "qcow2" if head == QCOW2_MAGIC else "raw"
    return ImageRef(str(path), fmt, sha.hexdigest(), _slug(path.name))


def _slug(path: str) -> str:
    stem = path.rsplit("/", 1)[-1]
    stem = re.sub(r"\.(qcow2|img|raw|iso)$", "", stem.lower())
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    return stem[:40].strip("-") or "image"
