"""The shared workspace: the pool and base image volumes, owned by no domain.

One per hypervisor (libvirt URI). Each domain that is rendered registers its
base image here; the shared plan is the union of registered images, so
applying it for one domain never drops another domain's backing volume.

A hypervisor other roots reach too (a remote one, or a simulated node file
outside the root) keeps one Terraform state for all of them when the state
is in PostgreSQL (pipeline._workspace_id): its pool is then the
hypervisor's, not a root's. The plan takes the pool's path from that state
once any root created it, and adds every base volume the state holds to the
images registered here, so one root's apply never drops or moves what
another made, and a domain plan rendered by any root names the same base
volume paths.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

from provisioner.layout import Layout, is_local
from provisioner.locks import exclusive
from provisioner.render import record as render_record
from provisioner.spec.model import ImageRef
from provisioner.terraform.workspace import Workspace
from provisioner.workspace import Artifact, write_atomic


def hypervisor_id(uri: str, layout: Layout) -> str:
    """A directory name for a hypervisor's shared workspace."""
    if uri == layout.simulator_uri:
        return "simulator"
    node = Path(uri[len("test://"):]) if uri.startswith("test://") else None
    if node is not None and node.name == "node.xml" and node.parent.parent == layout.simulators:
        return f"simulator-{node.parent.name}"  # the API's simulator:NAME hypervisor
    slug = re.sub(r"[^a-z0-9]+", "-", uri.lower()).strip("-")[:40]
    return f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


def across_roots(uri: str, layout: Layout) -> bool:
    """True if other roots may reach hypervisor `uri` too: it has a host, or is a node file outside this root.

    A local URI (qemu:///system) names each engine host's own hypervisor,
    the root's simulators are its own, and libvirt's test:///default lives
    in each process's memory.
    """
    if uri.startswith("test://"):
        node = Path(uri[len("test://"):])
        return uri != "test:///default" and node.is_absolute() and not node.is_relative_to(layout.root)
    return not is_local(uri)


def shared_dir(uri: str, layout: Layout) -> Path:
    """The shared workspace directory for hypervisor `uri`."""
    return layout.shared / hypervisor_id(uri, layout)


def shared_lock(directory: Path) -> AbstractContextManager[None]:
    """The shared workspace's lock (held while registering, rendering, applying)."""
    return exclusive(directory / "lock", f"shared workspace {directory.name}")


URI_FILE = "uri"  # the hypervisor's URI, for what knows only the directory (pipeline._workspace_id)


def recorded_uri(directory: Path) -> str | None:
    """The URI of the hypervisor whose shared workspace `directory` is (None: never registered)."""
    try:
        return (directory / URI_FILE).read_text()
    except FileNotFoundError:
        return None


StateReader = Callable[[Path], dict[str, dict]]
"""The managed resources (address -> attributes) of the workspace in a directory (pipeline.workspace_for)."""


def _local_state(directory: Path) -> dict[str, dict]:
    return Workspace.read_managed(directory / "terraform" / "terraform.tfstate")


def _without_vanished(images: dict[str, dict], state: dict[str, dict]) -> dict[str, dict]:
    """The registry minus images whose local source file is gone and whose volume was never created: the image was
    deleted before any apply made its volume, and no plan could create it any more (every later apply of
    the shared workspace failed on it). A created volume stays: domains may be backed by it."""
    applied = {attributes.get("name") for address, attributes in state.items()
               if address.startswith("libvirt_volume.")}
    return {name: entry for name, entry in images.items()
            if name in applied or not entry["source"].startswith("/") or Path(entry["source"]).exists()}


def pool_path(state: dict[str, dict], layout: Layout) -> Path:
    """Where the pool is: as the shared state holds it (whichever root made it), else under this root."""
    target = state.get("libvirt_pool.pool", {}).get("target") or {}
    return Path(target["path"]) if isinstance(target.get("path"), str) else layout.pool


def _applied_bases(state: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(resource, name, source, format) of the base volumes the state holds.

    Kept in the plan exactly as the state holds them, whichever root applied
    them (their source may be a path on another root, or this root's copy
    of the image at another path): Terraform has nothing to do for them, and
    a changed source would replace a volume domains are backed by.
    """
    out = []
    for address, attributes in state.items():
        kind, _, resource = address.partition(".")
        name = attributes.get("name")
        if kind != "libvirt_volume" or not isinstance(name, str):
            continue
        source = ((attributes.get("create") or {}).get("content") or {}).get("url")
        form = (((attributes.get("target") or {}).get("format")) or {}).get("type")
        if isinstance(source, str) and isinstance(form, str):
            out.append((resource, name, source, form))
    return out


@dataclass(frozen=True)
class Registered:
    """A hypervisor's shared workspace after a registration: its directory and where its pool is."""

    directory: Path
    pool: Path


def register(uri: str, layout: Layout, image: ImageRef | None, read_state: StateReader = _local_state) -> Registered:
    """Add `image` to the hypervisor's shared plan (None: only the pool, for a volume); the workspace and its pool.

    `read_state` reads the workspace's state wherever it is kept (its file, or PostgreSQL).
    """
    directory = shared_dir(uri, layout)
    with shared_lock(directory):
        return Registered(directory, render(directory, uri, layout, image, read_state))


def register_image(uri: str, layout: Layout, image: ImageRef | None, read_state: StateReader = _local_state) -> Path:
    """register(), for what needs only the workspace's directory."""
    return register(uri, layout, image, read_state).directory


def render(directory: Path, uri: str, layout: Layout, image: ImageRef | None, read_state: StateReader) -> Path:
    """Write the shared plan: the registry (plus `image`) and what the state holds; the pool's path.

    The caller holds shared_lock(directory).
    """
    if recorded_uri(directory) != uri:
        write_atomic(directory / URI_FILE, uri.encode())
    registry = directory / "images.json"
    images = json.loads(registry.read_text()) if registry.exists() else {}
    plan_file = directory / "terraform" / "main.tf"
    if not plan_file.exists():
        # A state kept in PostgreSQL is read through Terraform, which needs a configuration first.
        refs = [ImageRef(**entry) for entry in images.values()]
        write_atomic(plan_file, _shared_plan(uri, layout.pool, plan_bases(refs, [])).encode())
    state = read_state(directory)
    images = _without_vanished(images, state)
    if image is not None:
        images[image.volume_name] = asdict(image)
    write_atomic(registry, (json.dumps(images, indent=2, sort_keys=True) + "\n").encode())
    applied = _applied_bases(state)
    names = {name for _, name, _, _ in applied}
    refs = [ImageRef(**entry) for name, entry in images.items() if name not in names]
    pool = pool_path(state, layout)
    bases = plan_bases(refs, applied)
    made_from = render_record.digest(json.dumps([uri, str(pool), bases]))
    if not render_record.holds(directory, made_from):
        plan = Artifact("terraform/main.tf", _shared_plan(uri, pool, bases).encode())
        write_atomic(plan_file, plan.content, plan.mode)
        render_record.write(directory, made_from, [plan])
    return pool


def plan_bases(images: list[ImageRef], applied: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """The base volumes of the shared plan, (resource, name, source, format): `images` to make and those `applied`."""
    return sorted({(base_resource(i), i.volume_name, i.source, i.format) for i in images} | set(applied))


def base_resource(image: ImageRef) -> str:
    """Terraform resource name of a base image volume in the shared plan."""
    return "base_" + image.volume_name.rsplit(".", 1)[0].replace("-", "_").replace(".", "_")


def _shared_plan(uri: str, pool: Path, bases: list[tuple[str, str, str, str]]) -> str:
    from provisioner.render.plan import render_shared_plan  # Jinja2: only when the plan is rendered

    return render_shared_plan(uri, pool, bases)
