"""Entry point Terraform runs (through the mirror's wrapper script)."""

from provisioner.layout import restrict_umask
from provisioner.provider.plugin import main

# Run by Terraform, perhaps by hand: what the provider writes (node.xml, its TLS cache) stays private.
restrict_umask()
main()
