"""Resolving provision.conf's `image` into an ImageRef (source, format, digest).

`image` names an imported image (the store's current version), or is an
http(s) URL, or a local file: inside the domain directory (relative to it), or
inside a directory the operator allows with PROVISION_IMAGE_DIRS. Any other
host file (`/etc/shadow`, `../../x`, a symlink leading out) is refused: the
engine runs as root and would hand it to the guest as its disk.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping, Sequence

from provisioner.errors import InputError, ProvisionError
from provisioner.images.formats import HEAD_SIZE, detect
from provisioner.images.names import default_name, is_url, slug
from provisioner.images.store import ImageStore
from provisioner.spec.conf import cut
from provisioner.spec.model import ImageRef
from provisioner.spec.text import is_inside, open_inside, resolved

IMAGE_DIRS_ENV = "PROVISION_IMAGE_DIRS"
"""Colon-separated absolute directories whose files any domain may name as `image`, `kernel` or `initrd`."""


def image_dirs(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The directories PROVISION_IMAGE_DIRS allows (default: none); ProvisionError for a relative one."""
    raw = (os.environ if environ is None else environ).get(IMAGE_DIRS_ENV, "")
    dirs = []
    for item in raw.split(":"):
        if not item.strip():
            continue
        if not item.startswith("/"):
            raise ProvisionError(f"{IMAGE_DIRS_ENV}: {cut(item)} is not an absolute directory")
        dirs.append(Path(item))
    return tuple(dirs)


def local_file(value: str, key: str, base_dir: Path, where: str, allowed: Sequence[Path]) -> Path:
    """The file a provision.conf `key` names: inside `base_dir` (the domain directory) or an `allowed` directory.

    One error for a missing file and a file outside, so the error tells nothing
    about which host files exist.
    """
    path = resolved(base_dir / value)
    if not is_inside(path, [d.resolve() for d in (base_dir, *allowed)]) or not path.is_file():
        places = ", ".join(str(d) for d in allowed) or "none set"
        raise InputError(where, f"key {key!r}: {cut(value)} is neither an imported image, an http(s) URL nor "
                                f"an existing file inside the domain directory or {IMAGE_DIRS_ENV} ({places})"
                         if key == "image" else
                         f"key {key!r}: {cut(value)} is not an existing file inside the domain directory "
                         f"or {IMAGE_DIRS_ENV} ({places})")
    return path


def resolve_image(value: str, fmt: str, base_dir: Path, where: str, store: ImageStore,
                  digests: Mapping[str, str] | None = None, allowed: Sequence[Path] = ()) -> ImageRef:
    """Turn the `image` value into the ImageRef the plans use.

    A URL imported before (with every digest given matching) stands for its
    content; otherwise for itself, until `provision` imports it (again, if the
    imported file was deleted). A named image whose file was deleted raises
    ImageMissing, which names the file and the command that reimports it. A local file
    must lie inside `base_dir` or one of the `allowed` directories.
    """
    record = store.lookup(value)
    if record is None and is_url(value):
        record = next((r for r in store.list() if r.current and not r.missing and r.source == value
                       and all(r.digests().get(a) == v for a, v in (digests or {}).items())), None)
    if record is not None:
        store.present(record)
        if fmt not in ("auto", record.format):
            raise InputError(where, f"key 'image_format': {fmt!r}, but image {cut(value)} is {record.format}")
        return record.to_image_ref()
    if is_url(value):
        # Not imported (yet): the URL itself, with the format, identifies the volume.
        digest = hashlib.sha256(f"{fmt}:{value}".encode()).hexdigest()
        return ImageRef(value, "qcow2" if fmt == "auto" else fmt, digest, _slug(value))
    path = local_file(value, "image", base_dir, where, allowed)
    sha = hashlib.sha256()
    with open_inside(path, (base_dir, *allowed), f"the domain directory and {IMAGE_DIRS_ENV}") as stream:
        head = stream.read(HEAD_SIZE)
        sha.update(head)
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if fmt in ("auto", "qcow2"):
        # Also for a declared qcow2: one with a backing file would make qemu open that host file.
        try:
            detected = detect(str(path), head).format
        except ProvisionError as exc:
            raise InputError(where, f"key 'image': {exc}") from None
        if fmt == "qcow2" and detected != "qcow2":
            raise InputError(where, f"key 'image_format': qcow2, but the image is {detected}")
        fmt = detected
    return ImageRef(str(path), fmt, sha.hexdigest(), _slug(str(path)))


def _slug(source: str) -> str:
    try:
        return slug(default_name(source))
    except InputError:
        return slug(source.rstrip("/").rsplit("/", 1)[-1])

