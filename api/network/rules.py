"""Neutron's checks of a security group rule's protocol and port range, with its wording (clients match it).

A protocol is a name Neutron knows or a number 0-255 (as given: Neutron
stores and shows it so). For the port protocols (tcp, udp, dccp, sctp,
udplite) the range is ports 1-65535, both given, min <= max; for ICMP (icmp, icmpv6,
ipv6-icmp, 1, 58) port_range_min is the ICMP type and port_range_max the
code, each 0-255, and a code needs a type. Any other protocol, or none,
takes no range.
"""

from __future__ import annotations

from api.errors import BadRequest
from api.network.models import SecurityGroupRule
from provisioner.excerpt import cut

# neutron_lib.constants.IP_PROTOCOL_MAP's names, and "any".
NAMES = ("ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ip", "ipip", "ipv6-encap", "ipv6-frag",
         "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp", "tcp",
         "udp", "udplite", "vrrp", "any")
PORT_PROTOCOLS = ("tcp", "udp", "dccp", "sctp", "udplite", "6", "17", "33", "132", "136")
ICMP_PROTOCOLS = ("icmp", "icmpv6", "ipv6-icmp", "1", "58")
WHERE = "security_group_rule"


def protocol_of(value: str | int | None) -> str | None:
    """The rule's protocol as Neutron stores it: a known name (lower case) or a number 0-255 as text."""
    if value is None:
        return None
    text = str(value).lower()
    if text in NAMES or (text.isdigit() and int(text) <= 255):
        return text
    raise BadRequest(f"{WHERE}.protocol", f"Security group rule protocol {cut(str(value))} not supported. Only "
                                          "protocol values [None, " + ", ".join(NAMES) +
                                          "] and integer representations [0 to 255] are supported.")


def check_range(protocol: str | None, low: int | None, high: int | None) -> None:
    """BadRequest (Neutron's words) if the range does not fit the protocol."""
    if low is None and high is None:
        return
    if protocol in ICMP_PROTOCOLS:
        for name, number, field in (("type", low, "port_range_min"), ("code", high, "port_range_max")):
            if number is not None and not 0 <= number <= 255:
                raise BadRequest(f"{WHERE}.{field}", f"Invalid value for ICMP {name} ({field}): {number}. "
                                                     "It must be 0 to 255.")
        if low is None:
            raise BadRequest(f"{WHERE}.port_range_min", f"ICMP type (port-range-min) is missing for ICMP code "
                                                        f"(port-range-max) {high}.")
        return
    if protocol is None:
        raise BadRequest(f"{WHERE}.protocol", "Must also specify protocol if port range is given.")
    if protocol not in PORT_PROTOCOLS:
        raise BadRequest(f"{WHERE}.port_range_min", f"Protocol {protocol} does not take a port range.")
    for field, number in (("port_range_min", low), ("port_range_max", high)):
        if number is not None and not 1 <= number <= 65535:
            raise BadRequest(f"{WHERE}.{field}", f"Invalid value for port {number}")
    if low is None or high is None or low > high:
        raise BadRequest(f"{WHERE}.port_range_min", "For TCP/UDP protocols, port_range_min must be <= "
                                                    "port_range_max")


# A prefix of every address is the same as none (Neutron's _rule_to_key).
ANY_PREFIXES = ("0.0.0.0/0", "::/0")


def same_rule(a: SecurityGroupRule, b: SecurityGroupRule) -> bool:
    """Whether two rules match the same traffic of the same group (Neutron refuses the second: 409)."""
    def prefix(rule: SecurityGroupRule) -> str | None:
        return None if rule.remote_ip_prefix in ANY_PREFIXES else rule.remote_ip_prefix

    return prefix(a) == prefix(b) and all(getattr(a, name) == getattr(b, name) for name in (
        "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
        "remote_group_id"))
