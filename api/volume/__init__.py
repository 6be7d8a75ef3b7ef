"""Cinder v3: volumes and snapshots, each a Terraform-managed libvirt volume in its own workspace."""
