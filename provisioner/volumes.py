"""Standalone volumes: one Terraform-managed `libvirt_volume` per workspace, owned by no domain.

A volume lives in `<root>/volumes/<name>/terraform/` and outlives every
domain it is attached to. It is made in the pool of its hypervisor's shared
workspace (provisioner.shared), wherever that pool is: a domain plan refers to it by pool and name
(`AttachedVolume`) and never manages it. A volume is blank, or a copy of
another volume's content taken when it is created (a snapshot: the copy is
independent of later writes to the original). Rendering (`volume_plan`) is
pure; `create_volume` and `destroy_volume` are the side effects. A volume
made from a raw image starts as that image converted to qcow2 at the volume's
size (`qemu-img convert`, as Cinder converts an image into its volume's
format), a file kept in its workspace: Terraform uploads it into the pool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError
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
CONTENT_FORMATS = (FORMAT, "raw")  # what a volume's content can be: a raw one is converted first
CONVERTED = "content.qcow2"  # the converted content, in the volume's workspace directory
CONVERT_TIMEOUT = 3600  # bounds a hung qemu-img only: a few GiB take seconds


@dataclass(frozen=True)
class VolumeSpec:
    """A volume to create: its workspace name, hypervisor, size in bytes, and the volume it copies (if any)."""

    name: str
    libvirt_uri: str
    size: int
    copy_of: str | None = None
    content: str | None = None  # or an absolute file it starts as a copy of (an image's), without copy_of
    content_format: str = FORMAT  # the content file's format (one of CONTENT_FORMATS)

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


def converted_path(layout: Layout, name: str) -> Path:
    """Where the qcow2 conversion of the volume `name`'s raw content is kept."""
    return volume_dir(layout, name) / CONVERTED


def _content(spec: VolumeSpec, layout: Layout, pool: Path) -> str | None:
    """The file the volume is a copy of: the source volume's in the hypervisor's pool (at `pool`), its qcow2
    content, or its raw content's conversion."""
    if spec.copy_of:
        return str(pool / volume_name(spec.copy_of))
    if spec.content is not None and spec.content_format != FORMAT:
        return str(converted_path(layout, spec.name))
    return spec.content


def volume_plan(spec: VolumeSpec, layout: Layout, pool: Path) -> str:
    """The volume workspace's main.tf: a copy names the source volume's file in the pool (or its content's)."""
    source = _content(spec, layout, pool)
    return render_volume_plan(VolumePlanInput(uri=spec.libvirt_uri, pool=POOL_NAME, name=spec.volume_name,
                                              size=spec.size, format=FORMAT, copy_of=source))


def create_volume(spec: VolumeSpec, ctx: Context) -> None:
    """Make sure the hypervisor's pool exists (its shared workspace), then apply the volume's workspace there.

    Never replaces an existing volume (that would lose its data): a plan that
    would is a ProvisionError, like a failed apply (recorded in status.json).
    """
    if spec.content is not None and spec.content_format != FORMAT:
        convert_content(spec, ctx.layout)
    shared = register(spec.libvirt_uri, ctx.layout, None, lambda d: workspace_for(d, ctx).managed())
    ensure_shared(shared.directory, ctx)
    apply_standalone(volume_dir(ctx.layout, spec.name), f"volume {spec.name}",
                     volume_plan(spec, ctx.layout, shared.pool), ctx, yes=False)


def _qemu_img(spec: VolumeSpec, *args: str) -> None:
    """Run qemu-img; a ProvisionError with its words if it fails."""
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"volume {spec.name}: qemu-img {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        raise ProvisionError(f"volume {spec.name}: qemu-img {args[0]} failed: {done.stderr.strip()[-300:]}")


def convert_content(spec: VolumeSpec, layout: Layout) -> Path:
    """The volume's raw content converted to a qcow2 file of the volume's size, in its workspace directory
    (made once: a re-apply, an extend say, finds it there).

    The content must fit the volume (a ProvisionError otherwise: the API refuses such a request first), and
    its format is the one given, never probed (a raw image may hold what looks like a qcow2 header).
    """
    target = converted_path(layout, spec.name)
    if target.is_file():
        return target
    if spec.content is None or spec.content_format not in CONTENT_FORMATS:
        raise ProvisionError(f"volume {spec.name}: content format {spec.content_format!r} is not one of "
                             f"{', '.join(CONTENT_FORMATS)}")
    source = Path(spec.content)
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise ProvisionError(f"volume {spec.name}: its content {source} cannot be read: {exc.strerror}") from None
    if size > spec.size:
        raise ProvisionError(f"volume {spec.name}: its content is {size} bytes, larger than the volume "
                             f"({spec.size} bytes)")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < size:
        raise ProvisionError(f"volume {spec.name}: converting its content needs up to {size} bytes free in "
                             f"{target.parent}")
    partial = target.with_name(f".{CONVERTED}.partial")
    # Created at the volume's size first, then filled (-n): the guest sees the image's bytes, then zeros.
    _qemu_img(spec, "create", "-q", "-f", FORMAT, str(partial), str(spec.size))
    _qemu_img(spec, "convert", "-n", "-f", spec.content_format, "-O", FORMAT, str(source), str(partial))
    os.replace(partial, target)  # whole or absent: an interrupted conversion is made again
    return target


def destroy_volume(name: str, ctx: Context) -> None:
    """Delete the volume and its workspace; nothing to do if it has none."""
    destroy_standalone(volume_dir(ctx.layout, name), f"volume {name}", ctx)
