"""The front door: a domain's input directory becomes a validated DomainSpec."""

from provisioner.spec.model import DomainSpec, ImageRef, Nic, ExtraDisk, Address
from provisioner.spec.load import load_domain

__all__ = ["DomainSpec", "ImageRef", "Nic", "ExtraDisk", "Address", "load_domain"]
