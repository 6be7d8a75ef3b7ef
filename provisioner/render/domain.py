"""A domain workspace's files from its spec and keys: cloud-init documents, seed ISO, Terraform plan."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.keys import DomainKeys
from provisioner.layout import Layout
from provisioner.render.cloudinit import render_cloud_init
from provisioner.render.plan import domain_plan_input, render_domain_plan
from provisioner.render.seed import build_seed_iso
from provisioner.spec.model import DomainSpec
from provisioner.workspace import Artifact


def render_domain(spec: DomainSpec, keys: DomainKeys, layout: Layout, pool: Path | None = None) -> tuple[Artifact, ...]:
    """Every file the domain workspace holds for `spec` (`pool`: the hypervisor's pool, default under the root).

    user-data and the seed carry the guest's private host key: they are 0600,
    like everything else in the workspace except the plan.
    """
    docs = render_cloud_init(spec, keys)
    seed = build_seed_iso(docs)
    plan = domain_plan_input(spec, layout, seed, pool)
    override = spec.input_dir / "templates" if spec.input_dir else None
    spec_json = json.dumps(spec.to_json(), indent=2, sort_keys=True) + "\n"
    return (
        Artifact("spec.json", spec_json.encode()),
        Artifact("cloud-init/user-data", docs.user_data),
        Artifact("cloud-init/meta-data", docs.meta_data),
        Artifact("cloud-init/network-config", docs.network_config),
        Artifact("seed.iso", seed),
        Artifact("terraform/main.tf", render_domain_plan(plan, override, layout.template_cache).encode()),
    )
