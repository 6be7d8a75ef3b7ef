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
from typing import Callable

from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.render.plan import render_shared_plan
from provisioner.spec.model import ImageRef
from provisioner.terraform.workspace import Workspace
from provisioner.workspace import write_atomic


def hypervisor_id(uri: str, layout: Layout) -> str:
    """A directory name for a hypervisor's shared workspace."""
    if uri == layout.simulator_uri:
        return "simulator"
    node = Path(uri[len("test://"):]) if uri.startswith("test://") else None
    if node is not None and node.name == "node.xml" and node.parent.parent == layout.simulators:
        return f"simulator-{node.parent.name}"  # the API's simulator:NAME hypervisor
    slug = re.sub(r"[^a-z0-9]+", "-", uri.lower()).strip("-")[:40]
    return f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


def shared_dir(uri: str, layout: Layout) -> Path:
    """The shared workspace directory for hypervisor `uri`."""
    return layout.shared / hypervisor_id(uri, layout)


def shared_lock(directory: Path) -> AbstractContextManager[None]:
    """The shared workspace's lock (held while registering, rendering, applying)."""
    return exclusive(directory / "lock", f"shared workspace {directory.name}")


StateReader = Callable[[Path], dict[str, dict]]
"""The managed resources (address -> attributes) of the workspace in a directory (pipeline.workspace_for)."""


def _local_state(directory: Path) -> dict[str, dict]:
    return Workspace.read_managed(directory / "terraform" / "terraform.tfstate")


def _applied_volumes(directory: Path, read_state: StateReader) -> set[str]:
    """The names of the volumes the shared workspace's Terraform state holds."""
    return {attributes.get("name") for address, attributes in read_state(directory).items()
            if address.startswith("libvirt_volume.")}


def _without_vanished(images: dict[str, dict], directory: Path, read_state: StateReader) -> dict[str, dict]:
    """The registry minus images whose local source file is gone and whose volume was never created: the image was
    deleted before any apply made its volume, and no plan could create it any more (every later apply of
    the shared workspace failed on it). A created volume stays: domains may be backed by it."""
    applied = _applied_volumes(directory, read_state)
    return {name: entry for name, entry in images.items()
            if name in applied or not entry["source"].startswith("/") or Path(entry["source"]).exists()}


def register_image(uri: str, layout: Layout, image: ImageRef | None, read_state: StateReader = _local_state) -> Path:
    """Add `image` to the hypervisor's shared plan (None: only the pool, for a volume); return the workspace dir.

    `read_state` reads the workspace's state wherever it is kept (its file, or PostgreSQL).
    """
    directory = shared_dir(uri, layout)
    with shared_lock(directory):
        registry = directory / "images.json"
        images = json.loads(registry.read_text()) if registry.exists() else {}
        images = _without_vanished(images, directory, read_state)
        if image is not None:
            images[image.volume_name] = asdict(image)
        write_atomic(registry, (json.dumps(images, indent=2, sort_keys=True) + "\n").encode())
        refs = [ImageRef(**entry) for entry in images.values()]
        plan = render_shared_plan(uri, layout, refs)
        write_atomic(directory / "terraform" / "main.tf", plan.encode())
    return directory
