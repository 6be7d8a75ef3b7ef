"""A Neutron port's extension attributes: allowed address pairs, extra DHCP options and its binding.

Their structure (types, required members, the vnic_type enum) is api/openapi.yaml's; what is checked here
needs the values or the caller: addresses, MACs, duplicates, the admin-only binding members, and how an
update merges DHCP options. They are records: nothing on the host filters by address pairs or serves the
DHCP options yet (docs/api.md, Ports).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from api.errors import BadRequest, Forbidden
from api.network.models import Port
from provisioner.excerpt import describe

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# Neutron's default max_allowed_address_pair.
MAX_ADDRESS_PAIRS = 10
# Admins only (Neutron's policy): where a port is bound and what its binder is told.
ADMIN_BINDING = ("binding:host_id", "binding:profile")


def address_pairs(body: dict[str, Any], port_mac: str) -> tuple[dict[str, str], ...] | None:
    """The body's allowed_address_pairs (None when absent): each an IP address or CIDR with a MAC, the port's
    own when the pair names none; at most MAX_ADDRESS_PAIRS, no pair twice."""
    pairs = body.get("allowed_address_pairs")
    if pairs is None:
        return None if "allowed_address_pairs" not in body else ()
    if len(pairs) > MAX_ADDRESS_PAIRS:
        raise BadRequest("port.allowed_address_pairs",
                         f"The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}.")
    found: list[dict[str, str]] = []
    for index, pair in enumerate(pairs):
        where = f"port.allowed_address_pairs[{index}]"
        address = pair["ip_address"]  # required by the spec
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise BadRequest(f"{where}.ip_address", f"{describe(address)} is not an IP address or CIDR") from None
        mac = (pair.get("mac_address") or port_mac).lower()
        if not MAC.fullmatch(mac):
            raise BadRequest(f"{where}.mac_address", f"{describe(mac)} is not a MAC address")
        entry = {"ip_address": address, "mac_address": mac}
        if entry in found:
            raise BadRequest(where, f"Request contains duplicate address pair: mac_address {entry['mac_address']} "
                                    f"ip_address {address}.")
        found.append(entry)
    return tuple(found)


def dhcp_options(body: dict[str, Any], current: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The port's extra_dhcp_opts after the body's: an option replaces the one of its name and IP version, one
    whose opt_value is null removes it (as Neutron merges them on update); unchanged when absent."""
    options = body.get("extra_dhcp_opts")
    if options is None:
        return current
    merged = {(o["opt_name"], o["ip_version"]): dict(o) for o in current}
    for index, option in enumerate(options):
        name = option["opt_name"]  # required by the spec
        if not name.strip():
            raise BadRequest(f"port.extra_dhcp_opts[{index}].opt_name", "must not be empty")
        key = (name, option.get("ip_version") or 4)
        if option.get("opt_value") is None:
            merged.pop(key, None)
        else:
            merged[key] = {"opt_name": name, "opt_value": option["opt_value"], "ip_version": key[1]}
    return tuple(merged.values())


def check_binding(body: dict[str, Any], admin: bool) -> None:
    """Forbidden for a non-admin setting where a port is bound or its profile."""
    asked = [name for name in ADMIN_BINDING if name in body]
    if asked and not admin:
        raise Forbidden(f"setting {', '.join(asked)} requires the admin role")


def binding_of(body: dict[str, Any], port: Port | None) -> dict[str, Any]:
    """The Port fields the body's binding members set, over `port`'s (a new port's defaults for None)."""
    host = body.get("binding:host_id", port.host_id if port else "")
    profile = body.get("binding:profile", port.profile if port else {})
    vnic = body.get("binding:vnic_type", port.vnic_type if port else "normal")
    return {"host_id": host or "", "profile": dict(profile or {}), "vnic_type": vnic or "normal"}
