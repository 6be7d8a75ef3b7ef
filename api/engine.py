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
from provisioner.terraform.backend import StateDatabase
from provisioner.terraform.providers import EMBEDDED


class Engine:
    """Provision and destroy domains under one root, quietly (the API reports through records).

    With `database` (the API's `database:` URI) every workspace keeps its
    Terraform state in that PostgreSQL database, so a domain another API node
    built is destroyed here too; `libvirt_uri` is the hypervisor such a
    domain is on unless `destroy` is told.
    """

    def __init__(self, layout: Layout, provider: str = EMBEDDED, database: str | None = None,
                 libvirt_uri: str | None = None):
        self.layout = layout
        self.libvirt_uri = libvirt_uri
        state_db = None if database is None else StateDatabase.from_uri(database)
        self.ctx = pipeline.Context(layout, layout.domains, None, provider, Progress(quiet=True), state_db)

    def provision(self, spec: DomainSpec) -> None:
        """Render and converge `spec` (replacements allowed), then queue its post-boot job without waiting."""
        pipeline.provision_spec(spec, self.ctx, yes=True, wait=False)

    def destroy(self, name: str, libvirt_uri: str | None = None) -> None:
        """Destroy the domain's resources and workspace; nothing to do if it was never written.
        `libvirt_uri`: the hypervisor the domain was placed on, if known."""
        uri = libvirt_uri or self.libvirt_uri
        if (self.layout.domain_dir(name) / "terraform" / "main.tf").is_file():
            pipeline.destroy(name, self.ctx)
        elif self.ctx.state_db is not None and uri is not None:
            # Maybe built by another API node sharing the database: its state says what to destroy.
            pipeline.destroy_elsewhere_built(name, uri, self.ctx)
        elif self.layout.domain_dir(name).exists():
            # A build that failed before its plan was written leaves only keys and logs.
            shutil.rmtree(self.layout.domain_dir(name))
