"""provisioner: Terraform-backed provisioning of libvirt guests."""
