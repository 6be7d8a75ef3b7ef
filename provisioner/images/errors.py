"""Failures of the image store: each message names the image and the reason."""

from __future__ import annotations

from provisioner.errors import InputError, ProvisionError


class ImageError(ProvisionError):
    """A failure about one image; `name` is the image (or the source if unnamed)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"image {name!r}: {reason}")


class ImageNotFound(ImageError):
    """No image (or image version) by that name or id."""


class ImageInUse(ImageError):
    """The image version backs a domain and must not be deleted."""


class DigestMismatch(ImageError):
    """The content does not have the digest the user asked for."""


class FetchError(ImageError):
    """The source could not be read completely: missing file, HTTP error, truncation."""


class UnsupportedFormat(ImageError):
    """The content is neither a usable qcow2 nor a raw disk image."""


class ImageMissing(ImageError):
    """The store lists the version but its file is gone (deleted by hand): reimporting brings it back."""


class StoreError(ImageError):
    """The store itself is unreadable or could not be written."""


class UsageUnknown(ProvisionError):
    """A domain's spec.json is unreadable, so no image can be shown to be unused."""


class ImageInputError(InputError):
    """Bad input naming an image: its name, a digest argument, a list-file line."""
