"""Subnets allocated from a subnet pool (Neutron's subnet_allocation): a subnet create naming `subnetpool_id`
gets its cidr from the pool, the first free block of `prefixlen` (the pool's default_prefixlen without one),
or the cidr it asks for if that lies in the pool and is free. Blocks of one pool never overlap, whichever
network they went to; the pool's prefix-length bounds hold.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Union

from api.errors import BadRequest, Conflict
from api.network.models import Subnet, SubnetPool
from provisioner.excerpt import describe

Cidr = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def _free(prefixes: list[Cidr], used: list[Cidr]) -> list[Cidr]:
    """The pool's prefixes less the used blocks, smallest address first (at most a few networks per used
    block: address_exclude splits a prefix along the block's bits)."""
    free = list(prefixes)
    for block in used:
        rest: list[Cidr] = []
        for net in free:
            if block.subnet_of(net):  # type: ignore[arg-type]  # one IP version, as the pool
                rest.extend(net.address_exclude(block))  # type: ignore[arg-type]
            elif not net.subnet_of(block):  # type: ignore[arg-type]
                rest.append(net)
        free = rest
    return sorted(free, key=lambda n: (int(n.network_address), n.prefixlen))


def carve(pool: SubnetPool, body: dict[str, Any], subnets: list[Subnet]) -> Cidr:
    """The cidr a subnet create (`body`) gets from `pool`, given every subnet (for the pool's allocations).
    BadRequest for a prefix length or cidr outside the pool's bounds; Conflict when no block is free."""
    where = "subnet"
    prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
    used = [ipaddress.ip_network(s.cidr) for s in subnets if s.subnetpool_id == pool.id]
    requested, length = body.get("cidr"), body.get("prefixlen")  # a string and an integer: api/openapi.yaml
    if requested is not None:
        try:
            cidr = ipaddress.ip_network(requested, strict=False)
        except ValueError as exc:
            raise BadRequest(f"{where}.cidr", str(exc)) from None
        if not any(cidr.version == p.version and cidr.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
            raise BadRequest(f"{where}.cidr", f"{cidr} is not in subnet pool {pool.id} ({', '.join(pool.prefixes)})")
        length = cidr.prefixlen if length is None else length
    length = pool.default_prefixlen if length is None else length
    if not pool.min_prefixlen <= length <= pool.max_prefixlen or (requested is not None and length != cidr.prefixlen):
        raise BadRequest(f"{where}.prefixlen", f"{describe(length)}: subnet pool {pool.id} allocates prefixes of "
                                               f"/{pool.min_prefixlen} to /{pool.max_prefixlen}")
    if requested is not None:
        if any(cidr.overlaps(u) for u in used):  # type: ignore[arg-type]
            raise Conflict(f"Failed to allocate subnet: {cidr} is already allocated from subnet pool {pool.id}")
        return cidr
    for net in _free(prefixes, used):
        if net.prefixlen <= length:
            return next(net.subnets(new_prefix=length))
    raise Conflict(f"Failed to allocate subnet: subnet pool {pool.id} has no free /{length} prefix")
