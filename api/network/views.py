"""Neutron v2.0 JSON bodies, and its generic query filters."""

from __future__ import annotations

from typing import Any

import falcon

from api.compute.models import Server
from api.network.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet

# Paging and sorting: ignored (one page, creation order). `fields` selects (selected()).
NOT_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}


def selected(req: falcon.Request, view: dict[str, Any]) -> dict[str, Any]:
    """`view` with only the fields named by `fields=` query parameters (all of them without one)."""
    names = {n for value in req.get_param_as_list("fields") or () for n in value.split(",") if n}
    return {k: v for k, v in view.items() if k in names} if names else view


def filtered(req: falcon.Request, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the items whose fields equal every query parameter (any of a repeated one); then `fields=`."""
    for key in req.params:
        if key in NOT_FILTERS:
            continue
        wanted = {v.lower() for v in req.get_param_as_list(key)}
        views = [v for v in views if key in v and str(v[key]).lower() in wanted]
    return [selected(req, v) for v in views]


def _stamps(project_id: str) -> dict[str, Any]:
    return {"project_id": project_id, "tenant_id": project_id, "tags": [], "revision_number": 0,
            "created_at": None, "updated_at": None}


def network_view(network: Network, subnets: list[str]) -> dict[str, Any]:
    """A network."""
    # A Terraform-managed libvirt network lives on this host only: Neutron's "local" type.
    provider = ("local", None) if network.managed else ("flat", network.bridge or network.libvirt_network)
    return {"id": network.id, "name": network.name, "status": network.status,
            "admin_state_up": network.admin_state_up, "shared": network.shared,
            "router:external": network.external, "subnets": subnets, "mtu": 1500,
            "description": network.description, "port_security_enabled": True, "availability_zones": ["nova"],
            "provider:network_type": provider[0], "provider:physical_network": provider[1],
            "provider:segmentation_id": None, **_stamps(network.project_id)}


def subnet_view(subnet: Subnet) -> dict[str, Any]:
    """A subnet (list-valued fields are lists: OSC's formatters require it)."""
    return {"id": subnet.id, "name": subnet.name, "network_id": subnet.network_id, "cidr": subnet.cidr,
            "gateway_ip": subnet.gateway_ip, "ip_version": subnet.ip_version, "enable_dhcp": subnet.enable_dhcp,
            "dns_nameservers": list(subnet.dns_nameservers), "allocation_pools": list(subnet.allocation_pools),
            "host_routes": list(subnet.host_routes), "description": subnet.description,
            "ipv6_address_mode": subnet.ipv6_address_mode, "ipv6_ra_mode": subnet.ipv6_ra_mode, "subnetpool_id": None, "service_types": [], **_stamps(subnet.project_id)}


def port_views(server: Server) -> list[dict[str, Any]]:
    """A server's NICs as ports: fixed IPs allocated from a subnet, else the addresses libvirt reported."""
    return [{"id": port["id"], "name": "", "network_id": port["network_id"], "mac_address": port["mac"],
             "fixed_ips": port.get("fixed_ips") or [{"ip_address": ip} for ip in port.get("ips") or ()],
             "device_id": server.id, "device_owner": "compute:nova", "status": "ACTIVE", "admin_state_up": True,
             "binding:vnic_type": "normal", "security_groups": [], "description": "", **_stamps(server.project_id)}
            for port in server.ports]


def own_port_view(port: Port) -> dict[str, Any]:
    """A port created through Neutron (DOWN unless its addresses are carried: models.Port.status)."""
    return {"id": port.id, "name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
            "fixed_ips": list(port.fixed_ips), "device_id": port.device_id, "device_owner": port.device_owner,
            "status": port.status, "admin_state_up": port.admin_state_up, "binding:vnic_type": "normal",
            "security_groups": list(port.security_groups), "description": port.description,
            "allowed_address_pairs": [], "extra_dhcp_opts": [], "port_security_enabled": True,
            **_stamps(port.project_id)}


def rule_view(rule: SecurityGroupRule) -> dict[str, Any]:
    """A security group rule."""
    return {"id": rule.id, "security_group_id": rule.security_group_id, "direction": rule.direction,
            "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
            "remote_group_id": rule.remote_group_id, "remote_address_group_id": None,
            "description": rule.description, **_stamps(rule.project_id)}


def group_view(group: SecurityGroup, rules: list[SecurityGroupRule]) -> dict[str, Any]:
    """A security group with its rules."""
    return {"id": group.id, "name": group.name, "description": group.description, "stateful": True,
            "shared": False, "security_group_rules": [rule_view(r) for r in rules if r.security_group_id == group.id],
            **_stamps(group.project_id)}
