"""Entry point Terraform runs (through the mirror's wrapper script)."""

from provisioner.provider.plugin import main

main()
