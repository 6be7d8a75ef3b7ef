"""The steps of `provision`, in order: load -> render -> (apply -> post-boot)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.keys import ensure_keys
from provisioner.layout import Layout
from provisioner.render import render_domain
from provisioner.shared import register_image
from provisioner.spec import DomainSpec, load_domain
from provisioner.workspace import write_artifacts


@dataclass(frozen=True)
class Context:
    """Where inputs are read from and outputs written to, for one command."""

    layout: Layout
    domains_dir: Path
    libvirt_uri: str | None = None


@dataclass(frozen=True)
class Rendered:
    """What a render produced."""

    spec: DomainSpec
    workspace: Path
    shared_workspace: Path
    changed: list[str]


def render(name: str, ctx: Context) -> Rendered:
    """Validate the domain's input and write all its artifacts under the root.

    Input is fully validated before anything is written.
    """
    spec = load_domain(name, ctx.domains_dir, ctx.layout, ctx.libvirt_uri)
    workspace = ctx.layout.domain_dir(name)
    keys = ensure_keys(workspace / "keys", name)
    changed = write_artifacts(workspace, render_domain(spec, keys, ctx.layout))
    shared = register_image(spec.libvirt_uri, ctx.layout, spec.image)
    return Rendered(spec, workspace, shared, changed)
