"""Neutron's records.

A network created through the API is a Terraform-managed libvirt network
(`managed`, provisioner.networks); an admin may instead register an existing
host bridge as a provider network. The configured default network is shared
by every project and plugs NICs into its bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.compute.models import Server


ACTIVE, BUILD, DOWN, ERROR = "ACTIVE", "BUILD", "DOWN", "ERROR"
# device_owner of the ports a router holds (api/network/routers.py): changed through the router only.
INTERFACE, GATEWAY = "network:router_interface", "network:router_gateway"


@dataclass(frozen=True)
class Network:
    """A network; `bridge` / `libvirt_network` say where a NIC on it plugs in.

    `managed`: its libvirt network is applied from its own Terraform workspace.
    `status` is ACTIVE once that apply succeeded (ERROR if it failed); a record
    without one (written before networks were real) is DOWN and unusable.
    """

    id: str
    name: str
    project_id: str
    shared: bool = False
    admin_state_up: bool = True
    bridge: str | None = None
    libvirt_network: str | None = None
    description: str = ""
    managed: bool = False
    external: bool = False
    status: str = DOWN
    tags: tuple[str, ...] = ()
    # The configured hypervisors whose libvirt carries a managed network (api/network/applier.py): the first
    # from its creation, another while a server with a port on it is there (empty on a record from before: the
    # first only).
    hypervisors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subnet:
    """An IPv4 or IPv6 subnet of a network (the engine configures guests and libvirt networks from the
    IPv4 ones only: IPv6 subnets are records and addresses on ports)."""

    id: str
    name: str
    project_id: str
    network_id: str
    cidr: str
    gateway_ip: str | None
    ip_version: int = 4
    enable_dhcp: bool = True
    dns_nameservers: tuple[str, ...] = ()
    allocation_pools: tuple[dict[str, str], ...] = ()
    description: str = ""
    host_routes: tuple[dict[str, str], ...] = ()
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    tags: tuple[str, ...] = ()
    subnetpool_id: str | None = None  # the pool its cidr was allocated from (api/network/pool_allocation.py)


@dataclass(frozen=True)
class Port:
    """A port created through Neutron (a server's NICs are ports too, but live in its record): addresses
    held on a network for whatever `device_id` names (a router interface, or nothing yet)."""

    id: str
    name: str
    project_id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[dict[str, str], ...] = ()
    device_id: str = ""
    device_owner: str = ""
    admin_state_up: bool = True
    description: str = ""
    security_groups: tuple[str, ...] = ()
    # ACTIVE while something carries its addresses: a router interface on a subnet's gateway address of
    # an applied network (the host's bridge holds that address, api/network/applier.py); DOWN otherwise.
    status: str = DOWN
    tags: tuple[str, ...] = ()
    # Records (api/network/port_attributes.py): no filter or DHCP server on the host reads them yet.
    allowed_address_pairs: tuple[dict[str, str], ...] = ()
    extra_dhcp_opts: tuple[dict[str, Any], ...] = ()
    # Port binding (admins'): the host a port is bound to, and what the binder is told about it.
    host_id: str = ""
    vnic_type: str = "normal"
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Router:
    """A router as a record: its interfaces are ports (device_owner network:router_interface) holding each
    subnet's gateway address; no packet is routed by it on the simulated hypervisor (nor on a real one yet)."""

    id: str
    name: str
    project_id: str
    admin_state_up: bool = True
    description: str = ""
    gateway_network_id: str | None = None
    enable_snat: bool = True
    routes: tuple[dict[str, str], ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecurityGroup:
    """A security group: its rules filter its servers' ports (api/network/firewall.py)."""

    id: str
    name: str
    project_id: str
    description: str = ""
    tags: tuple[str, ...] = ()

    def holds(self, server: Server) -> bool:
        """Whether the server is in this group: Nova keeps a server's groups by name, each of its own project."""
        return self.project_id == server.project_id and self.name in server.security_groups


@dataclass(frozen=True)
class SecurityGroupRule:
    """A security group rule: what it allows, Neutron's fields."""

    id: str
    project_id: str
    security_group_id: str
    direction: str
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    description: str = ""
    name: str | None = None


@dataclass(frozen=True)
class FloatingIp:
    """An address of an external network held for a project, optionally associated with a port's fixed IP
    (api/network/floating_ips.py): a record; no NAT is applied for it (docs/api.md, Floating IPs)."""

    id: str
    project_id: str
    floating_network_id: str
    subnet_id: str
    floating_ip_address: str
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubnetPool:
    """A subnet pool: prefixes of one IP version a project's subnets may be carved from
    (api/network/subnet_pools.py, pool_allocation.py)."""

    id: str
    name: str
    project_id: str
    ip_version: int
    prefixes: tuple[str, ...]
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int
    shared: bool = False
    is_default: bool = False
    description: str = ""
    tags: tuple[str, ...] = ()
