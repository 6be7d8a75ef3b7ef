"""The shared workspace: the pool and base image volumes, owned by no domain.

One per hypervisor (libvirt URI). Each domain that is rendered registers its
base image here; the shared plan is the union of registered images, so
applying it for one domain never drops another domain's backing volume.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from contextlib import AbstractContextManager
from pathlib import Path

from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.render.plan import render_shared_plan
from provisioner.spec.model import ImageRef
from provisioner.workspace import write_atomic


def hypervisor_id(uri: str, layout: Layout) -> str:
    """A directory name for a hypervisor's shared workspace."""
    if uri == layout.simulator_uri:
        return "simulator"
    slug = re.sub(r"[^a-z0-9]+", "-", uri.lower()).strip("-")[:40]
    return f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


def shared_dir(uri: str, layout: Layout) -> Path:
    """The shared workspace directory for hypervisor `uri`."""
    return layout.shared / hypervisor_id(uri, layout)


def shared_lock(directory: Path) -> AbstractContextManager[None]:
    """The shared workspace's lock (held while registering, rendering, applying)."""
    return exclusive(directory / "lock", f"shared workspace {directory.name}")


def register_image(uri: str, layout: Layout, image: ImageRef | None) -> Path:
    """Add `image` to the hypervisor's shared plan (None: only the pool, for a volume); return the workspace dir."""
    directory = shared_dir(uri, layout)
    with shared_lock(directory):
        registry = directory / "images.json"
        images = json.loads(registry.read_text()) if registry.exists() else {}
        if image is not None:
            images[image.volume_name] = asdict(image)
        write_atomic(registry, (json.dumps(images, indent=2, sort_keys=True) + "\n").encode())
        refs = [ImageRef(**entry) for entry in images.values()]
        plan = render_shared_plan(uri, layout, refs)
        write_atomic(directory / "terraform" / "main.tf", plan.encode())
    return directory
