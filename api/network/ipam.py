"""IPv4 address management, pure: a subnet request validated, and fixed IPs chosen from subnets.

Nothing here reads or writes the store: the caller passes the network's
subnets and the addresses its ports already hold.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any, Iterator

from api.errors import BadRequest, Conflict
from api.http import field
from api.network.models import Subnet
from provisioner.excerpt import describe
from provisioner.spec.model import Address, Nic

IPv4 = ipaddress.IPv4Address
# /31 and /32 leave no address for a guest next to the gateway.
MAX_PREFIX = 30


@dataclass(frozen=True)
class SubnetRequest:
    """The validated addressing of a new subnet."""

    cidr: ipaddress.IPv4Network
    gateway: IPv4 | None
    pools: tuple[tuple[IPv4, IPv4], ...]
    dns: tuple[IPv4, ...]


@dataclass(frozen=True)
class FixedIp:
    """An address given to a port, with the subnet it came from."""

    subnet: Subnet
    address: IPv4

    def on(self, nic: Nic) -> Nic:
        """`nic` addressed statically: this address, the subnet's prefix, gateway and DNS servers."""
        return replace(nic, addresses=(Address(self.address, ipaddress.IPv4Network(self.subnet.cidr).prefixlen),),
                       gateway=IPv4(self.subnet.gateway_ip) if self.subnet.gateway_ip else None,
                       resolvers=tuple(IPv4(d) for d in self.subnet.dns_nameservers))

    def port_entry(self) -> dict[str, str]:
        """Neutron's `fixed_ips` entry."""
        return {"subnet_id": self.subnet.id, "ip_address": str(self.address)}


def _address(value: Any, where: str) -> IPv4:
    if not isinstance(value, str):
        raise BadRequest(where, f"{describe(value)} is not an IPv4 address")
    try:
        return IPv4(value)
    except ValueError:
        raise BadRequest(where, f"{describe(value)} is not an IPv4 address") from None


def _host(cidr: ipaddress.IPv4Network, address: IPv4, where: str) -> IPv4:
    """`address`, if it can be a host's in `cidr`."""
    if address not in cidr:
        raise BadRequest(where, f"{address} is outside the subnet {cidr}")
    if address in (cidr.network_address, cidr.broadcast_address):
        raise BadRequest(where, f"{address} is the network or broadcast address of {cidr}")
    return address


def _default_pools(cidr: ipaddress.IPv4Network, gateway: IPv4 | None) -> tuple[tuple[IPv4, IPv4], ...]:
    """Every host address but the gateway, as one or two ranges."""
    first, last = cidr.network_address + 1, cidr.broadcast_address - 1
    if gateway is None:
        return ((first, last),)
    return tuple((lo, hi) for lo, hi in ((first, gateway - 1), (gateway + 1, last)) if lo <= hi)


def _pools(body: dict[str, Any], cidr: ipaddress.IPv4Network,
           gateway: IPv4 | None) -> tuple[tuple[IPv4, IPv4], ...]:
    given = field(body, "allocation_pools", list, "subnet", False)
    if not given:
        return _default_pools(cidr, gateway)
    pools = []
    for index, pool in enumerate(given):
        where = f"subnet.allocation_pools[{index}]"
        if not isinstance(pool, dict):
            raise BadRequest(where, "must be {'start': IP, 'end': IP}")
        start = _host(cidr, _address(pool.get("start"), f"{where}.start"), f"{where}.start")
        end = _host(cidr, _address(pool.get("end"), f"{where}.end"), f"{where}.end")
        if start > end:
            raise BadRequest(where, f"start {start} is after end {end}")
        if gateway is not None and start <= gateway <= end:
            raise BadRequest(where, f"the range {start}-{end} holds the gateway {gateway}")
        for other_start, other_end in pools:
            if start <= other_end and other_start <= end:
                raise BadRequest(where, f"{start}-{end} overlaps {other_start}-{other_end}")
        pools.append((start, end))
    return tuple(pools)


def parse_subnet(body: dict[str, Any], siblings: list[Subnet]) -> SubnetRequest:
    """Validate a subnet's addressing against the other subnets of its network; errors name the field."""
    if field(body, "ip_version", int, "subnet", False, 4) != 4:
        raise BadRequest("subnet.ip_version", "only IPv4 subnets are supported")
    try:
        cidr = ipaddress.IPv4Network(field(body, "cidr", str, "subnet"), strict=False)
    except ValueError as exc:
        raise BadRequest("subnet.cidr", str(exc)) from None
    if cidr.prefixlen > MAX_PREFIX:
        raise BadRequest("subnet.cidr", f"{cidr} is too small: use a prefix of /{MAX_PREFIX} or shorter")
    for sibling in siblings:
        if cidr.overlaps(ipaddress.IPv4Network(sibling.cidr)):
            raise BadRequest("subnet.cidr", f"{cidr} overlaps subnet {sibling.name or sibling.id} "
                                            f"({sibling.cidr}) of the same network")
    if "gateway_ip" in body and body["gateway_ip"] is None:
        gateway = None  # Neutron's explicit "no gateway"
    elif "gateway_ip" in body:
        gateway = _host(cidr, _address(body["gateway_ip"], "subnet.gateway_ip"), "subnet.gateway_ip")
    else:
        gateway = cidr.network_address + 1
    dns = field(body, "dns_nameservers", list, "subnet", False, [])
    if field(body, "host_routes", list, "subnet", False):
        raise BadRequest("subnet.host_routes", "host routes are not supported")
    return SubnetRequest(cidr, gateway, _pools(body, cidr, gateway),
                         tuple(_address(d, f"subnet.dns_nameservers[{i}]") for i, d in enumerate(dns)))


def _pool_addresses(subnet: Subnet) -> Iterator[IPv4]:
    for pool in subnet.allocation_pools:
        address, end = IPv4(pool["start"]), IPv4(pool["end"])
        while address <= end:
            yield address
            address += 1


def allocate(subnets: list[Subnet], taken: set[IPv4], requested: str | None, where: str) -> FixedIp | None:
    """A free address for a port: `requested` (400 outside every subnet, 409 if taken), else the first free
    one of the subnets' allocation pools (409 when they are full). None when the network has no subnet.
    """
    address = None if requested is None else _address(requested, where)
    if not subnets:
        if address is not None:
            raise BadRequest(where, f"{address}: the network has no subnet to take a fixed IP from")
        return None
    gateways = {IPv4(s.gateway_ip) for s in subnets if s.gateway_ip}
    if address is not None:
        subnet = next((s for s in subnets if address in ipaddress.IPv4Network(s.cidr)), None)
        if subnet is None:
            raise BadRequest(where, f"{address} is in none of the network's subnets "
                                    f"({', '.join(s.cidr for s in subnets)})")
        _host(ipaddress.IPv4Network(subnet.cidr), address, where)
        if address in taken or address in gateways:
            raise Conflict(f"IP address {address} is already allocated in subnet {subnet.id}")
        return FixedIp(subnet, address)
    for subnet in subnets:
        free = next((a for a in _pool_addresses(subnet) if a not in taken and a not in gateways), None)
        if free is not None:
            return FixedIp(subnet, free)
    raise Conflict(f"No more IP addresses available on the network ({', '.join(s.cidr for s in subnets)})")
