"""Resolving provision.conf's `image` into an ImageRef (source, format, digest).

`image` names an imported image (the store's current version), or is an
http(s) URL, or a local file relative to the domain directory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from provisioner.errors import InputError, ProvisionError
from provisioner.images.formats import HEAD_SIZE, detect
from provisioner.images.names import default_name, is_url, slug
from provisioner.images.store import ImageStore
from provisioner.spec.model import ImageRef


def resolve_image(value: str, fmt: str, base_dir: Path, where: str, store: ImageStore,
                  digests: Mapping[str, str] | None = None) -> ImageRef:
    """Turn the `image` value into the ImageRef the plans use.

    A URL imported before (with every digest given matching) stands for its
    content; otherwise for itself, until `provision` imports it.
    """
    record = store.lookup(value)
    if record is None and is_url(value):
        record = next((r for r in store.list() if r.current and r.source == value
                       and all(r.digests().get(a) == v for a, v in (digests or {}).items())), None)
    if record is not None:
        if fmt not in ("auto", record.format):
            raise InputError(where, f"key 'image_format': {fmt!r}, but image {value!r} is {record.format}")
        return record.to_image_ref()
    if is_url(value):
        # Not imported (yet): the URL itself, with the format, identifies the volume.
        digest = hashlib.sha256(f"{fmt}:{value}".encode()).hexdigest()
        return ImageRef(value, "qcow2" if fmt == "auto" else fmt, digest, _slug(value))
    path = (base_dir / value).resolve()
    if not path.is_file():
        raise InputError(where, f"key 'image': {value!r} is neither an imported image, an http(s) URL "
                                "nor an existing file")
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        head = stream.read(HEAD_SIZE)
        sha.update(head)
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if fmt == "auto":
        try:
            fmt = detect(str(path), head).format
        except ProvisionError as exc:
            raise InputError(where, f"key 'image': {exc}") from None
    return ImageRef(str(path), fmt, sha.hexdigest(), _slug(str(path)))


def _slug(source: str) -> str:
    try:
        return slug(default_name(source))
    except InputError:
        return slug(source.rstrip("/").rsplit("/", 1)[-1])

