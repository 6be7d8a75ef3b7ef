"""Standalone volumes: one Terraform-managed `libvirt_volume` per workspace, owned by no domain.

A volume lives in `<root>/volumes/<name>/terraform/` and outlives every
domain it is attached to. It is made in the pool of its hypervisor's shared
workspace (provisioner.shared), wherever that pool is: a domain plan refers to it by pool and name
(`AttachedVolume`) and never manages it. A volume is blank, or a copy of
another volume's content taken when it is created (a snapshot: the copy is
independent of later writes to the original). Rendering (`volume_plan`) is
pure; `create_volume` and `destroy_volume` are the side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.layout import POOL_NAME, Layout
from provisioner.pipeline import (
    Context,
    apply_standalone,
    destroy_standalone,
    ensure_shared,
    workspace_for,
)
from provisioner.render.plan import VolumePlanInput, render_volume_plan
from provisioner.shared import register
from provisioner.spec.model import AttachedVolume

FORMAT = "qcow2"


@dataclass(frozen=True)
class VolumeSpec:
    """A volume to create: its workspace name, hypervisor, size in bytes, and the volume it copies (if any)."""

    name: str
    libvirt_uri: str
    size: int
    copy_of: str | None = None
    content: str | None = None  # or an absolute qcow2 file it starts as a copy of (an image's), without copy_of

    @property
    def volume_name(self) -> str:
        """The libvirt volume's name in the pool."""
        return volume_name(self.name)


def volume_name(name: str) -> str:
    """The libvirt volume name of the standalone volume `name`."""
    return f"{name}.{FORMAT}"


def volume_dir(layout: Layout, name: str) -> Path:
    """The volume's workspace directory under the root."""
    return layout.root / "volumes" / name


def attachment(name: str, target: str) -> AttachedVolume:
    """How a domain spec refers to the standalone volume `name`, as guest disk `target` (vdb, …)."""
    return AttachedVolume(pool=POOL_NAME, name=volume_name(name), format=FORMAT, target=target)


def volume_plan(spec: VolumeSpec, pool: Path) -> str:
    """The volume workspace's main.tf: a copy names the source volume's file in the hypervisor's pool (at `pool`)
    as its content."""
    source = str(pool / volume_name(spec.copy_of)) if spec.copy_of else spec.content
    return render_volume_plan(VolumePlanInput(uri=spec.libvirt_uri, pool=POOL_NAME, name=spec.volume_name,
                                              size=spec.size, format=FORMAT, copy_of=source))


def create_volume(spec: VolumeSpec, ctx: Context) -> None:
    """Make sure the hypervisor's pool exists (its shared workspace), then apply the volume's workspace there.

    Never replaces an existing volume (that would lose its data): a plan that
    would is a ProvisionError, like a failed apply (recorded in status.json).
    """
    shared = register(spec.libvirt_uri, ctx.layout, None, lambda d: workspace_for(d, ctx).managed())
    ensure_shared(shared.directory, ctx)
    apply_standalone(volume_dir(ctx.layout, spec.name), f"volume {spec.name}", volume_plan(spec, shared.pool),
                     ctx, yes=False)


def destroy_volume(name: str, ctx: Context) -> None:
    """Delete the volume and its workspace; nothing to do if it has none."""
    destroy_standalone(volume_dir(ctx.layout, name), f"volume {name}", ctx)
