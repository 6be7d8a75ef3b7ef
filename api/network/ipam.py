"""IPv4 and IPv6 address management, pure: a subnet request validated, and fixed IPs chosen from subnets.

Nothing here reads or writes the store: the caller passes the network's
subnets and the addresses its ports already hold.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any, Iterator

from api.errors import BadRequest, Conflict
from api.http import given
from api.network.models import Subnet
from provisioner.excerpt import describe
from provisioner.spec.model import Address, Nic

IPv4 = ipaddress.IPv4Address
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Cidr = ipaddress.IPv4Network | ipaddress.IPv6Network
# /31 and /32 leave no address for a guest next to the gateway (/127, /128 for IPv6).
MAX_PREFIX = {4: 30, 6: 126}
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
# Address modes in which a port's address is its MAC's EUI-64 interface id in the subnet's /64 (Neutron's
# auto-address subnets), not an address from the allocation pools.
AUTO_ADDRESS = ("slaac", "dhcpv6-stateless")


def auto_address(subnet: Subnet) -> bool:
    """Whether ports get their address on `subnet` from their MAC (SLAAC or DHCPv6-stateless)."""
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in AUTO_ADDRESS


def eui64(subnet: Subnet, mac: str) -> FixedIp:
    """The SLAAC address of MAC `mac` on the /64 `subnet` (RFC 4291 appendix A: the universal/local bit of the
    MAC's first octet flipped, ff:fe in its middle)."""
    octets = bytes(int(part, 16) for part in mac.split(":"))
    interface = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    prefix = ipaddress.IPv6Network(subnet.cidr)
    return FixedIp(subnet, prefix.network_address + int.from_bytes(interface, "big"))


class IpAddressAlreadyAllocated(Conflict):
    """A fixed IP another port (or floating IP) holds: Neutron's exception name, which clients match."""

    neutron_type = "IpAddressAlreadyAllocated"


@dataclass(frozen=True)
class SubnetRequest:
    """The validated addressing of a new subnet."""

    cidr: Cidr
    gateway: IP | None
    pools: tuple[tuple[IP, IP], ...]
    dns: tuple[IP, ...]
    host_routes: tuple[dict[str, str], ...] = ()
    ipv6_modes: tuple[str | None, str | None] = (None, None)


@dataclass(frozen=True)
class FixedIp:
    """An address given to a port, with the subnet it came from."""

    subnet: Subnet
    address: IP

    def on(self, nic: Nic) -> Nic:
        """`nic` addressed statically: this address, the subnet's prefix, gateway and DNS servers (IPv4)."""
        return replace(nic, addresses=(Address(self.address, ipaddress.IPv4Network(self.subnet.cidr).prefixlen),),
                       gateway=IPv4(self.subnet.gateway_ip) if self.subnet.gateway_ip else None,
                       resolvers=tuple(IPv4(d) for d in self.subnet.dns_nameservers if ":" not in d))

    def port_entry(self) -> dict[str, str]:
        """Neutron's `fixed_ips` entry."""
        return {"subnet_id": self.subnet.id, "ip_address": str(self.address)}


def _address(value: Any, where: str, version: int = 4) -> IP:
    kind = f"an IPv{version} address"
    if not isinstance(value, str):
        raise BadRequest(where, f"{describe(value)} is not {kind}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(where, f"{describe(value)} is not {kind}") from None
    if address.version != version:
        raise BadRequest(where, f"{address} is not {kind}")
    return address


def _last_host(cidr: Cidr) -> IP:
    # IPv4's last address is the broadcast address; IPv6 has none (Neutron pools end at the last address).
    return cidr.broadcast_address - 1 if cidr.version == 4 else cidr.broadcast_address


def _host(cidr: Cidr, address: IP, where: str) -> IP:
    """`address`, if it can be a host's in `cidr`."""
    if address not in cidr:
        raise BadRequest(where, f"{address} is outside the subnet {cidr}")
    if address == cidr.network_address or address > _last_host(cidr):
        raise BadRequest(where, f"{address} is the network or broadcast address of {cidr}")
    return address


def _default_pools(cidr: Cidr, gateway: IP | None) -> tuple[tuple[IP, IP], ...]:
    """Every host address but the gateway, as one or two ranges."""
    first, last = cidr.network_address + 1, _last_host(cidr)
    if gateway is None:
        return ((first, last),)
    return tuple((lo, hi) for lo, hi in ((first, gateway - 1), (gateway + 1, last)) if lo <= hi)


def _pools(body: dict[str, Any], cidr: Cidr, gateway: IP | None) -> tuple[tuple[IP, IP], ...]:
    requested = body.get("allocation_pools")  # [{start, end}], at most 100: api/openapi.yaml
    if not requested:
        return _default_pools(cidr, gateway)
    pools: list[tuple[IP, IP]] = []
    for index, pool in enumerate(requested):
        where = f"subnet.allocation_pools[{index}]"
        start = _host(cidr, _address(pool["start"], f"{where}.start", cidr.version), f"{where}.start")
        end = _host(cidr, _address(pool["end"], f"{where}.end", cidr.version), f"{where}.end")
        if start > end:
            raise BadRequest(where, f"start {start} is after end {end}")
        if gateway is not None and start <= gateway <= end:
            raise BadRequest(where, f"the range {start}-{end} holds the gateway {gateway}")
        for other_start, other_end in pools:
            if start <= other_end and other_start <= end:
                raise BadRequest(where, f"{start}-{end} overlaps {other_start}-{other_end}")
        pools.append((start, end))
    return tuple(pools)


def _gateway(body: dict[str, Any], cidr: Cidr, default: IP | None) -> IP | None:
    if "gateway_ip" in body and body["gateway_ip"] is None:
        return None  # Neutron's explicit "no gateway"
    if "gateway_ip" in body:
        return _host(cidr, _address(body["gateway_ip"], "subnet.gateway_ip", cidr.version), "subnet.gateway_ip")
    return default


def _dns(body: dict[str, Any], version: int, default: tuple[IP, ...]) -> tuple[IP, ...]:
    if "dns_nameservers" not in body:
        return default
    dns = tuple(_address(d, f"subnet.dns_nameservers[{i}]", version) for i, d in enumerate(body["dns_nameservers"]))
    if len(set(dns)) != len(dns):
        raise BadRequest("subnet.dns_nameservers", "lists an address twice")
    return dns


def _host_routes(body: dict[str, Any], cidr: Cidr,
                 default: tuple[dict[str, str], ...]) -> tuple[dict[str, str], ...]:
    """Validated `host_routes`: each {destination, nexthop} (api/openapi.yaml) a CIDR and an IP of the
    subnet's IP version."""
    if "host_routes" not in body:
        return default
    routes = []
    for index, route in enumerate(body["host_routes"]):
        where = f"subnet.host_routes[{index}]"
        destination = route["destination"]
        try:
            network = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            network = None
        if network is None or network.version != cidr.version:
            raise BadRequest(f"{where}.destination", f"{describe(destination)} is not an IPv{cidr.version} CIDR")
        nexthop = _address(route["nexthop"], f"{where}.nexthop", cidr.version)
        routes.append({"destination": str(network), "nexthop": str(nexthop)})
    return tuple(routes)


def _ipv6_modes(body: dict[str, Any], version: int) -> tuple[str | None, str | None]:
    modes = []
    for name in ("ipv6_ra_mode", "ipv6_address_mode"):
        mode = body.get(name)  # one of IPV6_MODES (api/openapi.yaml), for an IPv6 subnet only
        if mode is not None and version != 6:
            raise BadRequest(f"subnet.{name}", f"{describe(mode)}: an IPv6 subnet's mode is one of "
                                               f"{', '.join(IPV6_MODES)}")
        modes.append(mode)
    if None not in modes and modes[0] != modes[1]:
        raise BadRequest("subnet.ipv6_ra_mode", "must equal ipv6_address_mode when both are set")
    return modes[0], modes[1]


def parse_subnet(body: dict[str, Any], siblings: list[Subnet]) -> SubnetRequest:
    """Validate a subnet's addressing (a body of api/openapi.yaml's form) against the other subnets of its
    network; errors name the field."""
    version = given(body, "ip_version", 4)
    if body.get("cidr") is None:  # optional in the spec only for a subnet from a pool, which has one by now
        raise BadRequest("subnet.cidr", "is required")
    try:
        cidr = ipaddress.ip_network(body["cidr"], strict=False)
    except ValueError as exc:
        raise BadRequest("subnet.cidr", str(exc)) from None
    if cidr.version != version:
        raise BadRequest("subnet.cidr", f"{cidr} is not an IPv{version} network (ip_version {version})")
    if cidr.prefixlen > MAX_PREFIX[version]:
        raise BadRequest("subnet.cidr", f"{cidr} is too small: use a prefix of /{MAX_PREFIX[version]} or shorter")
    modes = _ipv6_modes(body, version)
    if cidr.prefixlen != 64 and (modes[0] == "slaac" or modes[1] in AUTO_ADDRESS):
        raise BadRequest("subnet.cidr", f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 "
                                        "address format, which requires the prefix to be /64")
    for sibling in siblings:
        other = ipaddress.ip_network(sibling.cidr)
        if other.version == cidr.version and cidr.overlaps(other):
            # Neutron's wording: Tempest's create_subnet retries the next CIDR on "overlaps with another subnet".
            raise BadRequest("subnet.cidr", f"Requested subnet with cidr: {cidr} for network: {sibling.network_id} "
                                            f"overlaps with another subnet ({sibling.id}, {sibling.cidr})")
    gateway = _gateway(body, cidr, cidr.network_address + 1)
    return SubnetRequest(cidr, gateway, _pools(body, cidr, gateway), _dns(body, version, ()),
                         _host_routes(body, cidr, ()), modes)


def update_subnet(subnet: Subnet, body: dict[str, Any]) -> Subnet:
    """`subnet` with a new gateway_ip, dns_nameservers or host_routes from `body` (validated as at create;
    a gateway may not fall in an allocation pool)."""
    cidr = ipaddress.ip_network(subnet.cidr)
    current = ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None
    gateway = _gateway(body, cidr, current)
    if gateway is not None and gateway != current and any(
            ipaddress.ip_address(p["start"]) <= gateway <= ipaddress.ip_address(p["end"])
            for p in subnet.allocation_pools):
        raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool of subnet {subnet.id}")
    dns = _dns(body, cidr.version, tuple(ipaddress.ip_address(d) for d in subnet.dns_nameservers))
    return replace(subnet, gateway_ip=None if gateway is None else str(gateway),
                   dns_nameservers=tuple(str(d) for d in dns),
                   host_routes=_host_routes(body, cidr, subnet.host_routes))


def _pool_addresses(subnet: Subnet) -> Iterator[IP]:
    for pool in subnet.allocation_pools:
        address, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        while address <= end:
            yield address
            address += 1


def allocate(subnets: list[Subnet], taken: set[IP], requested: str | None, where: str) -> FixedIp | None:
    """A free address for a port: `requested` (400 outside every subnet, 409 if taken), else the first free
    one of the subnets' allocation pools (409 when they are full). None when the network has no subnet.
    """
    address = None
    if requested is not None:
        version = 6 if isinstance(requested, str) and ":" in requested else 4
        address = _address(requested, where, version)
    if not subnets:
        if address is not None:
            raise BadRequest(where, f"{address}: the network has no subnet to take a fixed IP from")
        return None
    gateways = {ipaddress.ip_address(s.gateway_ip) for s in subnets if s.gateway_ip}
    if address is not None:
        subnet = next((s for s in subnets if address in ipaddress.ip_network(s.cidr)), None)
        if subnet is None:
            raise BadRequest(where, f"{address} is in none of the subnets ({', '.join(s.cidr for s in subnets)})")
        _host(ipaddress.ip_network(subnet.cidr), address, where)
        if address in taken or address in gateways:
            raise IpAddressAlreadyAllocated(f"IP address {address} is already allocated in subnet {subnet.id}")
        return FixedIp(subnet, address)
    for subnet in subnets:
        free = next((a for a in _pool_addresses(subnet) if a not in taken and a not in gateways), None)
        if free is not None:
            return FixedIp(subnet, free)
    raise Conflict(f"No more IP addresses available on the network ({', '.join(s.cidr for s in subnets)})")
