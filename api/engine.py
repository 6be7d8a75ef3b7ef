"""The provisioning engine as the API drives it: provision a DomainSpec the API built, destroy a domain.

A server has no input directory: its spec goes through the same
pipeline.provision_spec as `provision DOMAIN`, and its post-boot job is left
queued for the server's BackgroundWorker.
"""

from __future__ import annotations

import shutil

from provisioner import pipeline
from provisioner.layout import Layout
from provisioner.progress import Progress
from provisioner.spec.model import DomainSpec
from provisioner.terraform.providers import EMBEDDED


class Engine:
    """Provision and destroy domains under one root, quietly (the API reports through records)."""

    def __init__(self, layout: Layout, provider: str = EMBEDDED):
        self.layout = layout
        self.ctx = pipeline.Context(layout, layout.domains, None, provider, Progress(quiet=True))

    def provision(self, spec: DomainSpec) -> None:
        """Render and converge `spec` (replacements allowed), then queue its post-boot job without waiting."""
        pipeline.provision_spec(spec, self.ctx, yes=True, wait=False)

    def destroy(self, name: str) -> None:
        """Destroy the domain's resources and workspace; nothing to do if it was never written."""
        if (self.layout.domain_dir(name) / "terraform" / "main.tf").is_file():
            pipeline.destroy(name, self.ctx)
        elif self.layout.domain_dir(name).exists():
            # A build that failed before its plan was written leaves only keys and logs.
            shutil.rmtree(self.layout.domain_dir(name))
