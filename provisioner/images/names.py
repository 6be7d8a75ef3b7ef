"""Image names become file names in the store: validate them once, here."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from provisioner.excerpt import cut
from provisioner.images.errors import ImageInputError

# No '/' (paths), no '@' (it separates a name from a version's time stamp), no
# leading '.' (temporary files and the lock), nothing a shell or URL would mangle.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_IMAGE_SUFFIX = re.compile(r"\.(qcow2|img|raw)\Z", re.IGNORECASE)
_NAME_RULE = ("use 1 to 100 letters, digits, '.', '_', '+' or '-', starting with a letter "
              "or digit (no '/', '@' or spaces)")


def is_url(source: str) -> bool:
    """True if `source` is an http(s) URL (anything else is taken as a local path)."""
    return urlsplit(source).scheme.lower() in ("http", "https")


def is_valid_name(name: object) -> bool:
    """True if `name` could name an image in the store."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(name: object) -> str:
    """Return `name` if it is a valid image name, else raise ImageInputError."""
    if not isinstance(name, str) or not name:
        raise ImageInputError("image name", f"is empty or not a string; {_NAME_RULE}")
    if not is_valid_name(name):
        raise ImageInputError(f"image name {cut(name)}", f"is not a valid image name: {_NAME_RULE}")
    return name


def default_name(source: str) -> str:
    """The name an image gets from its source's file name, minus .qcow2/.img/.raw."""
    path = unquote(urlsplit(source).path) if is_url(source) else source
    base = _IMAGE_SUFFIX.sub("", path.rstrip("/").rsplit("/", 1)[-1])
    if not is_valid_name(base):
        raise ImageInputError(f"image source {cut(source, 80)}",
                              f"cannot name the image after {cut(base)}; give a name with --name")
    return base


def slug(name: str) -> str:
    """The short lower-case form used in libvirt volume names (see ImageRef.slug)."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:40].strip("-") or "image"
