"""Neutron's extension list: exactly the extensions this API implements (Tempest and clients skip or refuse
what is not listed, which is right when it really is absent)."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import NotFound
from api.http import send

# alias -> (name, description). tests/conformance/tempest_conf.py's NETWORK_EXTENSIONS lists the same (a test
# holds them equal).
EXTENSIONS = {
    "agent": ("agent", "The agent management extension (this deployment runs no agents: the list is empty)."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot "
                                                     "options to DHCP clients can be specified (e.g. tftp-server, "
                                                     "server-ip-address, bootfile-name)"),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address substring filtering when "
                                                                 "listing ports"),
    "service-type": ("Service Type Management", "API for retrieving service providers for Neutron advanced "
                                                "services"),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                          "router, network, policy, subnetpool, port, security_group, floatingip",
                          "Enables to set tag on resources with standard attribute."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "tag": ("Tag support", "Enables to set tag on resources."),
    "tag-ext": ("Tag support for resources: subnet, subnetpool, port, router",
                "Extends tag support to more L2 and L3 resources."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
                                                                     "specifying whether SNAT should occur on the "
                                                                     "external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
                                    "access to external networks via a NAT gateway."),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "security-group": ("security-group", "The security groups extension."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
}


def extension_view(alias: str) -> dict[str, Any]:
    """One extension as Neutron lists it."""
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "links": [],
            "updated": "2013-01-01T10:00:00-00:00"}


class Extensions:
    """/network/v2.0/extensions[/{alias}]."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"extensions": [extension_view(a) for a in sorted(EXTENSIONS)]})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        if item_id not in EXTENSIONS:
            raise NotFound(f"Extension with alias {item_id[:40]!r} does not exist")
        send(resp, {"extension": extension_view(item_id)})
