"""Terraform plans for the dmacvicar/libvirt 0.9.7 provider, from Jinja2 templates.

Workspaces: the shared one (pool + base image volumes, owned by no domain),
one per domain, which refers to the shared objects by plain name and path,
and one per standalone volume, which domains refer to the same way.
A domain directory may carry a `templates/` folder overriding any template.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from provisioner.layout import POOL_NAME, Layout, is_local
from provisioner.render.hcl import hcl
from provisioner.render.plancheck import refuse_unsafe_plan
from provisioner.spec.model import DomainSpec
from provisioner.templates import environment

PROVIDER_SOURCE = "dmacvicar/libvirt"
PROVIDER_VERSION = "0.9.7"


@dataclass(frozen=True)
class Volume:
    """A volume the plan creates, and the path libvirt gives it in the dir pool."""

    resource: str
    name: str
    path: str


@dataclass(frozen=True)
class DomainPlanInput:
    """Everything the domain template sees besides the spec."""

    spec: DomainSpec
    uri: str
    pool: str
    disk: Volume
    base_path: str
    seed: Volume
    seed_source: str
    extra_disks: tuple[tuple[Volume, int], ...]
    console_log: str | None = None


@dataclass(frozen=True)
class VolumePlanInput:
    """What the volume template sees: a volume of `size` bytes, blank or a copy of the file `copy_of`."""

    uri: str
    pool: str
    name: str
    size: int
    format: str
    copy_of: str | None = None


def _environment(override_dir: Path | None, compiled: Path | None = None) -> jinja2.Environment:
    env = environment(override_dir, {"hcl": hcl}, compiled, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(provider_source=PROVIDER_SOURCE, provider_version=PROVIDER_VERSION)
    return env


def _volume(pool: Path, resource: str, name: str) -> Volume:
    return Volume(resource, name, str(pool / name))


def domain_plan_input(spec: DomainSpec, layout: Layout, seed_iso: bytes, pool: Path | None = None) -> DomainPlanInput:
    """Name the domain's volumes: each name carries the digest of what it holds.

    `pool`: where the hypervisor's pool is (provisioner.shared.pool_path), by default under the root.
    """
    pool = layout.pool if pool is None else pool
    # A guest booted from a volume has no disk of its own: its plan names the volume (the template's vda).
    base = spec.image.volume_name if spec.image is not None else ""
    disk_digest = hashlib.sha256(base.encode()).hexdigest()[:12]
    seed_digest = hashlib.sha256(seed_iso).hexdigest()[:12]
    extra = tuple(
        (_volume(pool, f"data{i}", f"{spec.name}-data{i}.qcow2"), disk.size)
        for i, disk in enumerate(spec.extra_disks, start=1)
    )
    return DomainPlanInput(
        spec=spec,
        uri=spec.libvirt_uri,
        pool=POOL_NAME,
        disk=_volume(pool, "disk", f"{spec.name}-disk-{disk_digest}.qcow2"),
        base_path=str(pool / base) if base else "",
        seed=_volume(pool, "seed", f"{spec.name}-seed-{seed_digest}.iso"),
        seed_source=str(layout.domain_dir(spec.name) / "seed.iso"),
        extra_disks=extra,
        # The hypervisor writes it (virtlogd): only a local one can write into the workspace.
        console_log=str(layout.domain_dir(spec.name) / "logs" / "console.log") if is_local(spec.libvirt_uri) else None,
    )


DOMAIN_TEMPLATE = "terraform/domain.tf.j2"


def render_domain_plan(plan: DomainPlanInput, override_dir: Path | None = None, compiled: Path | None = None) -> str:
    """The domain workspace's main.tf; InputError if it holds anything but libvirt objects (plancheck).

    `compiled`: where compiled templates are kept between runs (Layout.template_cache).
    """
    template = _environment(override_dir, compiled).get_template(DOMAIN_TEMPLATE)
    text = template.render(p=plan, spec=plan.spec)
    refuse_unsafe_plan(text, plan.uri, template.filename or DOMAIN_TEMPLATE)
    return text


def render_volume_plan(plan: VolumePlanInput) -> str:
    """A volume workspace's main.tf (provisioner.volumes)."""
    return _environment(None).get_template("terraform/volume.tf.j2").render(v=plan)


def render_shared_plan(uri: str, pool_path: Path, bases: Iterable[tuple[str, str, str, str]]) -> str:
    """The shared workspace's main.tf: the pool at `pool_path` and the base image volumes `bases`,
    (resource, name, source, format) each (provisioner.shared.plan_bases)."""
    return _environment(None).get_template("terraform/shared.tf.j2").render(
        uri=uri, pool=POOL_NAME, pool_path=str(pool_path), bases=list(bases))


def render_orphan_plan(uri: str) -> str:
    """A plan with the provider for `uri` and no resources: destroys whatever its (shared) state holds."""
    return _environment(None).get_template("terraform/orphan.tf.j2").render(uri=uri)
