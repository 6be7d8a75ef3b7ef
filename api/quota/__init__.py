"""Quotas per project for Nova, Cinder and Neutron: defaults from config.yaml, admin overrides in state.db."""
