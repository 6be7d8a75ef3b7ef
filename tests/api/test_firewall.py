"""Security group rules rendered as a port's libvirt nwfilter (api/network/firewall.py). The filters' effect on a
real libvirtd's iptables is tests/api/test_firewall_libvirtd.py's."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from api.compute.models import DELETING, Port, Server
from api.network.firewall import filter_name, group_members, port_filter
from api.network.models import SecurityGroup, SecurityGroupRule

PORT = Port("0b7f2c4e-1111-2222-3333-444455556666", "net", "52:54:00:AB:CD:EF", ("10.0.0.7",))
MAC = "52:54:00:ab:cd:ef"
LAYER2 = {"mac", "ip", "ipv6", "arp"}  # libvirt's ebtables-level elements: the anti-spoofing rules


def _rule(direction: str = "ingress", ethertype: str = "IPv4", protocol: str | None = None, low: int | None = None,
          high: int | None = None, prefix: str | None = None, remote_group: str | None = None) -> SecurityGroupRule:
    return SecurityGroupRule("r", "p", "g", direction, ethertype, protocol, low, high, prefix, remote_group)


def _accepts(rules: list[SecurityGroupRule], members: dict[str, list[str]] | None = None
             ) -> list[tuple[str, str, dict[str, str]]]:
    """The filter's group rules (priority 500): (direction, protocol element, attributes)."""
    root = ET.fromstring(port_filter(PORT, rules, members or {}).xml)
    return [(r.get("direction", ""), r[0].tag, dict(r[0].attrib)) for r in root.findall("rule")
            if r.get("priority") == "500"]


def test_a_port_in_no_group_passes_only_dhcp_and_neighbour_discovery() -> None:
    found = port_filter(PORT, [], {})
    root = ET.fromstring(found.xml)
    assert found.name == filter_name(PORT.id) == root.get("name") == f"provisioner-port-{PORT.id}"
    assert root.findtext("uuid") == PORT.id, "the same UUID at every definition: libvirt redefines by it"
    accepted = {(r.get("direction"), r[0].tag, r[0].get("dstportstart") or r[0].get("type"))
                for r in root.findall("rule") if r.get("action") == "accept" and r[0].tag not in LAYER2}
    assert ("out", "udp", "67") in accepted and ("in", "udp", "68") in accepted
    assert ("inout", "icmpv6", "135") in accepted and ("inout", "icmpv6", "136") in accepted
    assert not any(tag in ("tcp", "all") for _, tag, _ in accepted)
    drops = [(r.get("direction"), r[0].tag) for r in root.findall("rule") if r.get("action") == "drop"
             and r[0].tag not in LAYER2]
    assert drops == [("inout", "all"), ("inout", "all-ipv6")]
    # The drops come after every accept: libvirt orders a filter's rules by priority.
    priorities = [int(r.get("priority", "0")) for r in root.findall("rule")]
    assert max(p for p, r in zip(priorities, root.findall("rule")) if r.get("action") == "accept") < 900


def test_an_ingress_port_range_from_a_prefix() -> None:
    assert _accepts([_rule(protocol="tcp", low=8000, high=8080, prefix="10.2.3.124/24")]) == [
        ("in", "tcp", {"srcipaddr": "10.2.3.0", "srcipmask": "24", "dstportstart": "8000", "dstportend": "8080"})]


def test_an_egress_rule_names_the_destination() -> None:
    assert _accepts([_rule("egress", "IPv6", "udp", 53, 53, "2001:db8::/32")]) == [
        ("out", "udp-ipv6", {"dstipaddr": "2001:db8::", "dstipmask": "32", "dstportstart": "53", "dstportend": "53"})]


@pytest.mark.parametrize(("ethertype", "protocol", "element"), [
    ("IPv4", None, "all"), ("IPv4", "any", "all"), ("IPv4", "6", "tcp"), ("IPv4", "17", "udp"), ("IPv4", "sctp", "sctp"),
    ("IPv6", None, "all-ipv6"), ("IPv6", "icmp", "icmpv6"), ("IPv6", "ipv6-icmp", "icmpv6"), ("IPv6", "58", "icmpv6"),
])
def test_protocols_by_name_or_number_and_ethertype(ethertype: str, protocol: str | None, element: str) -> None:
    assert _accepts([_rule(ethertype=ethertype, protocol=protocol)]) == [("in", element, {})]


def test_icmp_type_and_code_and_an_any_prefix() -> None:
    assert _accepts([_rule(protocol="icmp", low=8, high=0, prefix="0.0.0.0/0")]) == [
        ("in", "icmp", {"type": "8", "code": "0"})]
    assert _accepts([_rule(ethertype="IPv6", protocol="icmpv6", low=128)]) == [("in", "icmpv6", {"type": "128"})]


def test_a_protocol_nwfilter_cannot_express_allows_nothing() -> None:
    assert _accepts([_rule(protocol="gre"), _rule(protocol="112")]) == []


def test_a_remote_group_allows_its_members_addresses_of_the_rules_ethertype() -> None:
    members = {"web": ["10.0.0.5", "fd00::5", "10.0.0.6"], "empty": []}
    assert _accepts([_rule(protocol="tcp", low=22, high=22, remote_group="web")], members) == [
        ("in", "tcp", {"srcipaddr": address, "srcipmask": "32", "dstportstart": "22", "dstportend": "22"})
        for address in ("10.0.0.5", "10.0.0.6")]
    assert _accepts([_rule("egress", "IPv6", remote_group="web")], members) == [
        ("out", "all-ipv6", {"dstipaddr": "fd00::5", "dstipmask": "128"})]
    assert _accepts([_rule(remote_group="empty"), _rule(remote_group="unknown")], members) == []


def _layer2(port: Port) -> list[tuple[str, str, str, dict[str, str]]]:
    """The filter's anti-spoofing rules in libvirt's order: (action, priority, element, attributes)."""
    rules = [r for r in ET.fromstring(port_filter(port, [], {}).xml).findall("rule") if r[0].tag in LAYER2]
    assert all(r.get("direction") == "out" for r in rules), "only what the guest sends is checked"
    return sorted(((r.get("action", ""), r.get("priority", ""), r[0].tag, dict(r[0].attrib)) for r in rules),
                  key=lambda found: int(found[1]))


def test_a_port_sends_only_from_its_mac_and_fixed_addresses() -> None:
    port = Port(PORT.id, "net", "52:54:00:AB:CD:EF", ("10.0.0.7", "fd00::7"))
    dhcp = {"srcipaddr": "0.0.0.0", "protocol": "udp", "srcportstart": "68", "dstportstart": "67"}
    assert _layer2(port) == [
        ("accept", "10", "ip", {"srcmacaddr": MAC, "srcipaddr": "10.0.0.7"}),
        ("accept", "10", "ip", {"srcmacaddr": MAC, **dhcp}),
        ("drop", "11", "mac", {"protocolid": "ipv4"}),
        ("accept", "20", "arp", {"srcmacaddr": MAC, "arpsrcmacaddr": MAC, "arpsrcipaddr": "10.0.0.7"}),
        ("accept", "20", "arp", {"srcmacaddr": MAC, "arpsrcmacaddr": MAC, "arpsrcipaddr": "0.0.0.0"}),
        ("drop", "21", "mac", {"protocolid": "arp"}),
        ("accept", "30", "ipv6", {"srcmacaddr": MAC, "srcipaddr": "fd00::7", "srcipmask": "128"}),
        ("accept", "30", "ipv6", {"srcmacaddr": MAC, "srcipaddr": "fe80::", "srcipmask": "10"}),
        ("accept", "30", "ipv6", {"srcmacaddr": MAC, "srcipaddr": "::", "srcipmask": "128"}),
        ("drop", "31", "mac", {"protocolid": "ipv6"}),
        ("drop", "40", "mac", {"match": "no", "srcmacaddr": MAC}),
    ]
    # Before the group rules and the DHCP/ND passes: a spoofed frame is dropped whatever the groups allow.
    assert max(int(priority) for _, priority, _, _ in _layer2(port)) < 100


def test_a_port_without_fixed_addresses_of_a_version_is_held_to_its_mac_for_it() -> None:
    # Its network has no subnet of that version (the guest's address comes from elsewhere): no source to check.
    assert [(action, element, attributes.get("protocolid")) for action, _, element, attributes in
            _layer2(Port(PORT.id, "net", MAC, ("fd00::7",)))] == [
        ("accept", "ipv6", None), ("accept", "ipv6", None), ("accept", "ipv6", None), ("drop", "mac", "ipv6"),
        ("drop", "mac", None)]
    assert _layer2(Port(PORT.id, "net", MAC)) == [("drop", "40", "mac", {"match": "no", "srcmacaddr": MAC})]


def test_group_members_are_the_servers_naming_the_group_in_its_project() -> None:
    def server(name: str, project: str, groups: tuple[str, ...], ips: list[str], task_state: str | None = None
               ) -> Server:
        ports = tuple({"id": f"{name}-{i}", "network_id": "n", "mac": "m", "ips": [ip]} for i, ip in enumerate(ips))
        return Server(name, name, project, "u", f"srv-{name}", "1", "i", ports, security_groups=groups,
                      task_state=task_state)

    groups = [SecurityGroup("g1", "web", "p1"), SecurityGroup("g2", "web", "p2"), SecurityGroup("g3", "db", "p1")]
    servers = [server("a", "p1", ("web",), ["10.0.0.1", "10.1.0.1"]), server("b", "p1", ("web", "db"), ["10.0.0.2"]),
               server("c", "p2", ("web",), ["10.0.0.3"]), server("d", "p1", ("web",), ["10.0.0.4"], DELETING),
               server("e", "p1", (), ["10.0.0.5"])]
    assert group_members(groups, servers) == {"g1": ["10.0.0.1", "10.1.0.1", "10.0.0.2"], "g2": ["10.0.0.3"],
                                              "g3": ["10.0.0.2"]}
    assert group_members([SecurityGroup("g4", "empty", "p1")], servers) == {"g4": []}
