"""Base images: a checksum-verified, versioned store under `<root>/images` (docs/images.md).

Shared by the CLI (`provision image …`), provision.conf's `image` key and the
Glance API: `ImageStore(layout)` is the entry point.
"""

from provisioner.images.errors import (
    DigestMismatch, FetchError, ImageError, ImageInputError, ImageInUse, ImageMissing, ImageNotFound,
    StoreError, UnsupportedFormat, UsageUnknown,
)
from provisioner.images.records import ImageRecord
from provisioner.images.store import ImageStore

__all__ = [
    "DigestMismatch", "FetchError", "ImageError", "ImageInputError", "ImageInUse", "ImageMissing", "ImageNotFound",
    "ImageRecord", "ImageStore", "StoreError", "UnsupportedFormat", "UsageUnknown",
]
