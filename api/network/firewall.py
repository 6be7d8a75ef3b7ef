"""Security groups as libvirt network filters: one nwfilter per server port, rendered from the rules of the
server's groups (pure: no libvirt here; api/network/firewall_sync.py defines them on the hypervisors).

Neutron's semantics, as its iptables firewall driver applies them: a port drops every IPv4 and IPv6 packet no
rule of its groups allows, in each direction (a port in no group passes nothing); a rule allows a protocol (and
a destination port range, or an ICMP type and code) from a remote prefix (ingress) or to one (egress), or from or
to the addresses of the ports in a remote group; the filter is stateful (libvirt matches connection state on
these rules by default: an allowed connection's replies pass). DHCP and IPv6 neighbour discovery always pass, as
Neutron's base rules let them.

Anti-spoofing, as Neutron's port security and Nova's libvirt filters (no-mac-spoofing, no-ip-spoofing,
no-arp-spoofing) do: a port sends only from its MAC, and IPv4 (and ARP) or IPv6 only from its fixed addresses of
that version (plus a DHCP request from 0.0.0.0, an ARP probe, and IPv6 link-local and duplicate-address
detection). These are ebtables-level rules (libvirt's mac, ip, ipv6 and arp elements) in the same filter; a port
with no fixed address of a version (its network has no subnet of it: the guest's address comes from elsewhere)
is held to its MAC only for that version.

libvirt's nwfilter has no rule for a protocol outside those below (gre, vrrp, dccp, a bare number): a rule for
one allows nothing; docs/api.md says so.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from api.compute.models import DELETING, Port, Server
from api.network.models import SecurityGroup, SecurityGroupRule

_PREFIX = "provisioner-port-"
# nwfilter protocol elements per (ethertype, Neutron protocol); None: any protocol.
_ELEMENTS = {
    "IPv4": {None: "all", "any": "all", "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp",
             "1": "icmp", "sctp": "sctp", "132": "sctp", "udplite": "udplite", "136": "udplite", "esp": "esp",
             "50": "esp", "ah": "ah", "51": "ah", "igmp": "igmp", "2": "igmp"},
    "IPv6": {None: "all-ipv6", "any": "all-ipv6", "tcp": "tcp-ipv6", "6": "tcp-ipv6", "udp": "udp-ipv6",
             "17": "udp-ipv6", "icmp": "icmpv6", "icmpv6": "icmpv6", "ipv6-icmp": "icmpv6", "58": "icmpv6",
             "sctp": "sctp-ipv6", "132": "sctp-ipv6", "udplite": "udplite-ipv6", "136": "udplite-ipv6",
             "esp": "esp-ipv6", "50": "esp-ipv6", "ah": "ah-ipv6", "51": "ah-ipv6"},
}
_PORTS = ("tcp", "udp", "sctp", "udplite")  # elements (and their -ipv6 forms) that take a port range
# Neighbour discovery (router solicitation/advertisement, neighbour solicitation/advertisement) and MLD
# queries/reports: Neutron's base rules pass them whatever the groups say.
_ND_TYPES = (130, 131, 132, 133, 134, 135, 136, 143)
# Priorities: libvirt evaluates lower first. Anti-spoofing accepts a protocol's allowed frames at n, drops the
# rest of that protocol at n + 1.
_SPOOF_IPV4, _SPOOF_ARP, _SPOOF_IPV6, _SPOOF_MAC = 10, 20, 30, 40
_BASE, _RULES, _DROP = 100, 500, 900


@dataclass(frozen=True)
class PortFilter:
    """One server port's filter: its name on the hypervisor and its XML definition."""

    name: str
    xml: str


def filter_name(port_id: str) -> str:
    """The nwfilter of a server's port (a port id is a UUID: the name is unique and valid for libvirt)."""
    return _PREFIX + port_id


def port_filter(port: Port, rules: Sequence[SecurityGroupRule], members: Mapping[str, Sequence[str]]) -> PortFilter:
    """The filter of a port whose groups hold `rules`; `members` maps each group id a rule names as its remote
    group to the addresses of the ports in it."""
    root = ET.Element("filter", name=filter_name(port.id), chain="root")
    # libvirt redefines a filter only under the UUID it has: the port's id (a UUID too) keeps it the same.
    ET.SubElement(root, "uuid").text = port.id
    _no_spoofing(root, port)
    _base(root)
    for rule in rules:
        for remote in _remotes(rule, members):
            _rule(root, rule, remote)
    for element in ("all", "all-ipv6"):
        drop = ET.SubElement(root, "rule", action="drop", direction="inout", priority=str(_DROP))
        ET.SubElement(drop, element)
    return PortFilter(filter_name(port.id), ET.tostring(root, encoding="unicode"))


def group_members(groups: Iterable[SecurityGroup], servers: Sequence[Server]) -> dict[str, list[str]]:
    """The fixed addresses of the servers each group holds, by group id (a server being deleted: in none)."""
    staying = [s for s in servers if s.task_state != DELETING]
    return {group.id: [ip for server in staying if group.holds(server) for port in server.ports
                       for ip in port.get("ips") or ()] for group in groups}


def _base(root: ET.Element) -> None:
    """DHCP (v4 client/server ports, v6 546/547) and neighbour discovery pass in both directions."""
    for element, client, server in (("udp", 68, 67), ("udp-ipv6", 546, 547)):
        for direction, source, destination in (("out", client, server), ("in", server, client)):
            rule = ET.SubElement(root, "rule", action="accept", direction=direction, priority=str(_BASE))
            ET.SubElement(rule, element, srcportstart=str(source), dstportstart=str(destination))
    for icmp_type in _ND_TYPES:
        rule = ET.SubElement(root, "rule", action="accept", direction="inout", priority=str(_BASE),
                             statematch="false")
        ET.SubElement(rule, "icmpv6", type=str(icmp_type))


def _no_spoofing(root: ET.Element, port: Port) -> None:
    """What the guest sends (direction out) carries the port's MAC and, per IP version the port has fixed
    addresses of, one of them as its source: each allowed frame is accepted at the ebtables level (the group
    rules still judge it at the iptables level), a frame of that protocol not accepted is dropped."""
    mac = port.mac.lower()
    fixed = [ipaddress.ip_address(a) for a in port.ips]

    def guard(priority: int, element: str, accepts: list[dict[str, str]], protocol: str) -> None:
        for attributes in accepts:
            _out(root, "accept", priority, element, srcmacaddr=mac, **attributes)
        _out(root, "drop", priority + 1, "mac", protocolid=protocol)

    if v4 := [str(a) for a in fixed if a.version == 4]:
        dhcp = {"srcipaddr": "0.0.0.0", "protocol": "udp", "srcportstart": "68", "dstportstart": "67"}
        guard(_SPOOF_IPV4, "ip", [{"srcipaddr": a} for a in v4] + [dhcp], "ipv4")
        # 0.0.0.0: an ARP probe (RFC 5227) before the guest takes its address.
        guard(_SPOOF_ARP, "arp", [{"arpsrcmacaddr": mac, "arpsrcipaddr": a} for a in (*v4, "0.0.0.0")], "arp")
    if v6 := [str(a) for a in fixed if a.version == 6]:
        sources = [(a, "128") for a in v6] + [("fe80::", "10"), ("::", "128")]  # and link-local, DAD's
        guard(_SPOOF_IPV6, "ipv6", [{"srcipaddr": a, "srcipmask": m} for a, m in sources], "ipv6")
    _out(root, "drop", _SPOOF_MAC, "mac", match="no", srcmacaddr=mac)


def _out(root: ET.Element, action: str, priority: int, element: str, **attributes: str) -> None:
    rule = ET.SubElement(root, "rule", action=action, direction="out", priority=str(priority))
    ET.SubElement(rule, element, attributes)


def _remotes(rule: SecurityGroupRule, members: Mapping[str, Sequence[str]]) -> list[ipaddress.IPv4Network |
                                                                                   ipaddress.IPv6Network | None]:
    """The networks a rule allows traffic from (ingress) or to (egress); [None]: anywhere."""
    version = 4 if rule.ethertype == "IPv4" else 6
    if rule.remote_group_id is not None:
        addresses = (ipaddress.ip_address(a) for a in members.get(rule.remote_group_id, ()))
        return [ipaddress.ip_network(a) for a in addresses if a.version == version]
    if rule.remote_ip_prefix is not None:
        network = ipaddress.ip_interface(rule.remote_ip_prefix).network
        return [None] if network.prefixlen == 0 else [network]
    return [None]


def _rule(root: ET.Element, rule: SecurityGroupRule, remote: ipaddress.IPv4Network | ipaddress.IPv6Network | None
          ) -> None:
    element = _ELEMENTS[rule.ethertype].get(rule.protocol)
    if element is None:
        return
    attributes: dict[str, str] = {}
    if remote is not None:
        side = "src" if rule.direction == "ingress" else "dst"  # the remote end of the packet
        attributes[f"{side}ipaddr"] = str(remote.network_address)
        attributes[f"{side}ipmask"] = str(remote.prefixlen)
    if element.removesuffix("-ipv6") in _PORTS and rule.port_range_min is not None:
        attributes["dstportstart"] = str(rule.port_range_min)
        attributes["dstportend"] = str(rule.port_range_max)
    elif element in ("icmp", "icmpv6") and rule.port_range_min is not None:
        attributes["type"] = str(rule.port_range_min)
        if rule.port_range_max is not None:
            attributes["code"] = str(rule.port_range_max)
    direction = "in" if rule.direction == "ingress" else "out"
    accept = ET.SubElement(root, "rule", action="accept", direction=direction, priority=str(_RULES))
    ET.SubElement(accept, element, attributes)
