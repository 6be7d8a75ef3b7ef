"""Which image versions back a domain: read from every workspace's spec.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provisioner.images.errors import UsageUnknown
from provisioner.layout import Layout


@dataclass(frozen=True)
class ImageUse:
    """One domain's base image, as recorded when the domain was rendered."""

    domain: str
    digest: str
    source: str

    def uses(self, sha256: str, path: Path) -> bool:
        """True if this domain is backed by the content `sha256` or by the file `path`."""
        if self.digest == sha256:
            return True
        # A path given in provision.conf may be the `<name>.<fmt>` link: compare real files.
        return self.source.startswith("/") and Path(self.source).resolve() == path.resolve()


def image_uses(layout: Layout) -> list[ImageUse]:
    """Every domain's image; an unreadable spec.json is an error, never "not in use"."""
    uses = []
    for spec in sorted(layout.domains.glob("*/spec.json")):
        try:
            image = json.loads(spec.read_text())["image"]
            if image is None:
                continue  # booted from a volume: backed by no image
            uses.append(ImageUse(spec.parent.name, str(image["digest"]), str(image["source"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageUnknown(f"cannot tell which images are in use: {spec} is unreadable "
                               f"({exc}); fix or remove it") from None
    return uses
