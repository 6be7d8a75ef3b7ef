"""The resource types this provider implements, by Terraform type name."""

from __future__ import annotations

from .base import Resource
from .domain import DomainResource
from .pool import PoolResource
from .volume import VolumeResource


def all_resources() -> dict[str, Resource]:
    """Every resource implementation, keyed by type name."""
    from .network import NetworkResource

    resources: list[Resource] = [PoolResource(), VolumeResource(), DomainResource(), NetworkResource()]
    return {r.type_name: r for r in resources}
