"""The provisioning engine as the API drives it: provision a DomainSpec the API built, destroy a domain.

`provision` mirrors provisioner.pipeline.provision for a spec that has no
input directory (write artifacts, shared workspace, converge, status, then
queue the post-boot job for the server's BackgroundWorker). It belongs in
provisioner.pipeline (as `provision_spec`); until then it calls the
pipeline's steps from here, read-only.
"""

from __future__ import annotations

import shutil
import time

from provisioner import pipeline
from provisioner.errors import ProvisionError
from provisioner.layout import Layout
from provisioner.postboot.schedule import schedule_postboot
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
        with pipeline.domain_lock(self.ctx, spec.name):
            rendered = pipeline._write(spec, self.ctx)
            pipeline.ensure_shared(rendered, self.ctx)
            workspace = pipeline._workspace(rendered.workspace, self.ctx)
            started = time.time()
            try:
                pipeline._converge(workspace, self.ctx, spec.name, True)
            except ProvisionError as exc:
                pipeline.record_status(rendered.workspace, "failed", started, str(exc))
                raise
            pipeline.record_status(rendered.workspace, "applied", started)
        schedule_postboot(self.layout, spec, rendered.workspace, False, self.ctx.progress, address=spec.ssh_address)

    def destroy(self, name: str) -> None:
        """Destroy the domain's resources and workspace; nothing to do if it was never written."""
        if (self.layout.domain_dir(name) / "terraform" / "main.tf").is_file():
            pipeline.destroy(name, self.ctx)
        elif self.layout.domain_dir(name).exists():
            # A build that failed before its plan was written leaves only keys and logs.
            shutil.rmtree(self.layout.domain_dir(name))
