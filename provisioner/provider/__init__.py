"""An embedded Terraform provider implementing the subset of dmacvicar/libvirt 0.9.7 our plans use.

`python -m provisioner.provider` runs the plugin server; `mirror.install_mirror`
puts it where `terraform init` finds it without network access. Imports are
kept lazy: Terraform starts the provider several times per command.
"""

PROVIDER_ADDRESS = "registry.terraform.io/dmacvicar/libvirt"
PROVIDER_VERSION = "0.9.7"
