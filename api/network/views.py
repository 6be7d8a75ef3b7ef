"""Neutron v2.0 JSON bodies, and its generic query filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import falcon

from api.compute.models import Server
from api.compute.views import HOST
from api.errors import BadRequest
from api.network.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet
from api.network.paging import paged
from provisioner.excerpt import LIMIT, cut, describe

# Paging and sorting (api/network/paging.py) and `fields`, which selects (selected()).
NOT_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}
# The tag extension's filters, each a comma-separated list: all of them, any of them, not all, none.
TAG_FILTERS = {"tags": lambda have, want: want <= have, "tags-any": lambda have, want: bool(want & have),
               "not-tags": lambda have, want: not want <= have, "not-tags-any": lambda have, want: not want & have}


def selected(req: falcon.Request, view: dict[str, Any]) -> dict[str, Any]:
    """`view` with only the fields named by `fields=` query parameters (all of them without one)."""
    names = {n for value in req.get_param_as_list("fields") or () for n in value.split(",") if n}
    return {k: v for k, v in view.items() if k in names} if names else view


def _fixed_ip_matches(fixed_ips: list[dict[str, str]], conditions: list[str]) -> bool:
    """Neutron's `fixed_ips=` filter on ports: each condition `ip_address=A`, `subnet_id=S` or
    `ip_address_substr=T` (ip-substring-filtering); values of one key are alternatives, keys must all hold."""
    wanted: dict[str, set[str]] = {}
    for condition in conditions:
        key, _, value = condition.partition("=")
        if key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise BadRequest("fixed_ips", f"{describe(condition)}: use ip_address=, subnet_id= or ip_address_substr=")
        wanted.setdefault(key, set()).add(value)
    for key, values in wanted.items():
        if key == "ip_address_substr":
            if not any(v in f.get("ip_address", "") for f in fixed_ips for v in values):
                return False
        elif not any(f.get(key) in values for f in fixed_ips):
            return False
    return True


def filtered(req: falcon.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the items whose fields equal every query parameter (any of a repeated one), the tag filters and
    ports' `fixed_ips`; then sort and page them (paging.py) and select `fields=`. A parameter that is no
    attribute of the listed items is refused (Neutron's filter-validation), which an empty list cannot tell."""
    known = {k for v in views for k in v}
    for key in req.params:
        if key in NOT_FILTERS:
            continue
        values = req.get_param_as_list(key)
        if key in TAG_FILTERS:
            want = {t for value in values for t in value.split(",") if t}
            views = [v for v in views if TAG_FILTERS[key](set(v.get("tags", ())), want)]
        elif views and key not in known:
            name = key if len(key) <= LIMIT and key.isprintable() else cut(key)  # Neutron's wording otherwise
            raise BadRequest("", f"[{name}] is invalid attribute for filtering")
        elif key == "fixed_ips":
            views = [v for v in views if _fixed_ip_matches(v["fixed_ips"], values)]
        else:
            wanted = {v.lower() for v in values}
            views = [v for v in views if key in v and str(v[key]).lower() in wanted]
    return [selected(req, v) for v in paged(req, views)]


def stamps(project_id: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """The attributes every Neutron resource carries: its project (both spellings), tags and timestamps."""
    return {"project_id": project_id, "tenant_id": project_id, "tags": list(tags), "revision_number": 0,
            "created_at": None, "updated_at": None}


def binding(host_id: str, vnic_type: str, profile: dict[str, Any], admin: bool) -> dict[str, Any]:
    """A port's binding attributes: vnic_type for everyone, the rest for admins only (Neutron's policy).

    A port bound to this API's hypervisor plugs into a Linux bridge (the libvirt network's, or a provider
    network's); a host the engine does not build on cannot bind it; no host: unbound."""
    shown: dict[str, Any] = {"binding:vnic_type": vnic_type}
    if admin:
        vif_type = "unbound" if not host_id else "bridge" if host_id == HOST else "binding_failed"
        shown.update({"binding:host_id": host_id, "binding:profile": dict(profile), "binding:vif_type": vif_type,
                      "binding:vif_details": {"connectivity": "l2"} if vif_type == "bridge" else {}})
    return shown


def network_view(network: Network, subnets: list[str]) -> dict[str, Any]:
    """A network."""
    # A Terraform-managed libvirt network lives on this host only: Neutron's "local" type.
    provider = ("local", None) if network.managed else ("flat", network.bridge or network.libvirt_network)
    return {"id": network.id, "name": network.name, "status": network.status,
            "admin_state_up": network.admin_state_up, "shared": network.shared,
            "router:external": network.external, "subnets": subnets, "mtu": 1500,
            "description": network.description, "port_security_enabled": True, "availability_zones": ["nova"],
            "provider:network_type": provider[0], "provider:physical_network": provider[1],
            "provider:segmentation_id": None, **stamps(network.project_id, network.tags)}


def subnet_view(subnet: Subnet) -> dict[str, Any]:
    """A subnet (list-valued fields are lists: OSC's formatters require it)."""
    return {"id": subnet.id, "name": subnet.name, "network_id": subnet.network_id, "cidr": subnet.cidr,
            "gateway_ip": subnet.gateway_ip, "ip_version": subnet.ip_version, "enable_dhcp": subnet.enable_dhcp,
            "dns_nameservers": list(subnet.dns_nameservers), "allocation_pools": list(subnet.allocation_pools),
            "host_routes": list(subnet.host_routes), "description": subnet.description,
            "ipv6_address_mode": subnet.ipv6_address_mode, "ipv6_ra_mode": subnet.ipv6_ra_mode,
            "subnetpool_id": subnet.subnetpool_id, "service_types": [], **stamps(subnet.project_id, subnet.tags)}


def port_views(server: Server, admin: bool = False, groups: Iterable[SecurityGroup] = ()) -> list[dict[str, Any]]:
    """A server's NICs as ports (bound to the one compute host): fixed IPs allocated from a subnet, else the
    addresses libvirt reported; their security groups: those of `groups` holding the server. `admin`: with the admin-only binding attributes."""
    ids = [g.id for g in groups if g.holds(server)]
    return [{"id": port["id"], "name": "", "network_id": port["network_id"], "mac_address": port["mac"],
             "fixed_ips": port.get("fixed_ips") or [{"ip_address": ip} for ip in port.get("ips") or ()],
             "device_id": server.id, "device_owner": "compute:nova", "status": "ACTIVE", "admin_state_up": True,
             "security_groups": list(ids), "description": "", "allowed_address_pairs": [], "extra_dhcp_opts": [],
             **binding(HOST, "normal", {}, admin), **stamps(server.project_id)}
            for port in server.ports]


def own_port_view(port: Port, admin: bool = False) -> dict[str, Any]:
    """A port created through Neutron (DOWN unless its addresses are carried: models.Port.status).
    `admin`: with the admin-only binding attributes."""
    return {"id": port.id, "name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
            "fixed_ips": list(port.fixed_ips), "device_id": port.device_id, "device_owner": port.device_owner,
            "status": port.status, "admin_state_up": port.admin_state_up,
            "security_groups": list(port.security_groups), "description": port.description,
            "allowed_address_pairs": [dict(p) for p in port.allowed_address_pairs],
            "extra_dhcp_opts": [dict(o) for o in port.extra_dhcp_opts], "port_security_enabled": True,
            **binding(port.host_id, port.vnic_type, port.profile, admin), **stamps(port.project_id, port.tags)}


def rule_view(rule: SecurityGroupRule) -> dict[str, Any]:
    """A security group rule."""
    return {"id": rule.id, "security_group_id": rule.security_group_id, "direction": rule.direction,
            "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
            "remote_group_id": rule.remote_group_id, "remote_address_group_id": None,
            "description": rule.description, **stamps(rule.project_id)}


def group_view(group: SecurityGroup, rules: list[SecurityGroupRule]) -> dict[str, Any]:
    """A security group with its rules."""
    return {"id": group.id, "name": group.name, "description": group.description, "stateful": True,
            "shared": False, "security_group_rules": [rule_view(r) for r in rules if r.security_group_id == group.id],
            **stamps(group.project_id, group.tags)}
