"""The front door: a domain's input directory becomes a validated DomainSpec.

`provisioner.spec.load.load_domain` reads one; `provisioner.spec.model` holds the types.
"""
