"""Glance v2 over the engine's image store (provisioner.images)."""
