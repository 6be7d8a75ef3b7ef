"""Which libvirt provider Terraform uses: the embedded one (default) or upstream's.

The plans are the same either way; only the CLI config Terraform is given differs.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import ProvisionError

EMBEDDED = "embedded"
UPSTREAM = "upstream"
SOURCES = (EMBEDDED, UPSTREAM)


def cli_config(terraform_dir: Path, source: str) -> Path:
    """Write (if needed) and return the Terraform CLI config for `source`."""
    from provisioner.provider import mirror

    if source == EMBEDDED:
        return mirror.install_mirror(terraform_dir)
    if source == UPSTREAM:
        return mirror.write_upstream_cliconfig(terraform_dir)
    raise ProvisionError(f"unknown Terraform provider source {source!r}: use {' or '.join(SOURCES)}")
