"""Fixtures: a simulated hypervisor (test:/// node file) and terraform workspaces on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.provider.mirror import install_mirror

from .tfrun import Workspace, domain_plan, shared_plan, terraform_env


@dataclass
class Site:
    """A temporary root: node file, pool dir, CLI config and workspace factory."""

    root: Path
    cli_config: Path

    @property
    def node(self) -> Path:
        return self.root / "hypervisor" / "node.xml"

    @property
    def uri(self) -> str:
        return f"test://{self.node}"

    @property
    def pool_dir(self) -> Path:
        return self.root / "pool"

    def workspace(self, rel: str, main_tf: str, init: bool = True) -> Workspace:
        ws = Workspace(self.root / rel, terraform_env(self.cli_config))
        ws.dir.mkdir(parents=True, exist_ok=True)
        (ws.dir / "main.tf").write_text(main_tf)
        if init:
            ws.init()
        return ws

    def shared(self) -> Workspace:
        return self.workspace("shared/terraform", shared_plan(
            self.uri, self.pool_dir,
            "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"))

    def seed(self, name: str) -> Path:
        seed = self.root / "domains" / name / "seed.iso"
        seed.parent.mkdir(parents=True, exist_ok=True)
        if not seed.exists():
            seed.write_bytes(name.encode() * 1000)
        return seed

    def domain(self, name: str = "example.test", init: bool = True, **kw) -> Workspace:
        return self.workspace(f"domains/{name}/terraform",
                              domain_plan(self.uri, name, self.pool_dir, self.seed(name), **kw), init=init)

    def rewrite_domain(self, ws: Workspace, name: str = "example.test", **kw) -> None:
        (ws.dir / "main.tf").write_text(domain_plan(self.uri, name, self.pool_dir, self.seed(name), **kw))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A fresh simulated site with the provider installed in a local mirror."""
    return Site(tmp_path, install_mirror(tmp_path / "terraform"))


@pytest.fixture
def shared_applied(site: Site) -> Site:
    """A site whose shared workspace (pool + base image volume) is applied."""
    site.shared().apply()
    return site
