"""Neutron networks onto the engine: a managed network's libvirt_network applied or destroyed on each hypervisor
that carries it.

A managed network is applied on the first configured hypervisor when it is
created, in the request: an apply takes a few seconds (terraform init + apply
of one resource), so network create, subnet create and delete run it
synchronously rather than as a task. A failed create leaves nothing (no
record, workspace or libvirt network) and is an error; a later failed apply
leaves the network in ERROR. The reason is in the workspace's status.json and
logs/terraform.log. Another hypervisor carries it while servers with a port on
it are there (api/network/carriers.py); a subnet change is applied on every
hypervisor that carries it, and a delete destroys it on each.
"""

from __future__ import annotations

import ipaddress
import logging

from api.compute.placement import Host, Hosts
from api.engine import Engine
from api.errors import ApiError
from api.network.models import ACTIVE, ERROR, Network
from api.network.store import NetworkStore
from provisioner.errors import ProvisionError
from provisioner.networks import (HostAddress, NetworkSpec, apply_network, bridge_name, destroy_network,
                                  workspace_name)

log = logging.getLogger("api.network")


class NetworkApplier:
    """Converges managed networks on the hypervisors carrying them; provider networks and the default are left
    alone."""

    def __init__(self, store: NetworkStore, engine: Engine, hosts: Hosts, forward: str | None = None):
        self.store = store
        self.engine = engine  # its pipeline context, read when used: a stand-in engine may lack one
        self.hosts = hosts
        self.home = hosts.hosts[0]  # where every managed network is made, at its creation
        self.forward = forward

    def carriers(self, network: Network) -> list[Host]:
        """The configured hypervisors carrying the network (a record from before: the first); one no longer
        configured is left out."""
        if not network.managed:
            return []
        if not self.hosts.placing:  # the one hypervisor, whatever this machine's name was when it was recorded
            return [self.home]
        names = network.hypervisors or (self.home.name,)
        return [h for h in self.hosts.hosts if h.name in names]

    def spec(self, network: Network, host: Host | None = None) -> NetworkSpec:
        """The libvirt network of a managed network on `host` (None: the first hypervisor): the host holds each
        subnet's gateway; forwarding as configured (`network_forward`; none: isolated) once it has an address
        (libvirt refuses nat and route without one, so a network stays isolated until its first subnet). IPv4
        and IPv6 subnets alike: the host holds an IPv6 gateway too (guests' NICs are addressed from the IPv4
        subnets only). Each hypervisor's copy is its own (same addresses, its own bridge): they are not joined."""
        host = host or self.home
        addresses = tuple(HostAddress(ipaddress.ip_address(s.gateway_ip), ipaddress.ip_network(s.cidr).prefixlen)
                          for s in self.store.subnets_of(network.id) if s.gateway_ip)
        name = network.libvirt_network or ""
        return NetworkSpec(name=name, bridge=bridge_name(network.id), uri=host.uri, addresses=addresses,
                           forward=self.forward if addresses else None, workspace=self.workspace(network, host))

    def workspace(self, network: Network, host: Host) -> str:
        """The network's workspace on `host`: its name on the first hypervisor, name@hypervisor on the others."""
        return workspace_name(network.libvirt_network or "", None if host is self.home else host.name)

    def converge(self, network: Network, host: Host | None = None) -> None:
        """Apply the network's libvirt network on `host` (None: the first hypervisor); ProvisionError if it
        fails."""
        spec = self.spec(network, host)
        while True:
            apply_network(spec, self.engine.ctx)
            # A subnet changed by another request meanwhile may have been applied before ours: converge again.
            latest = self.spec(network, host)
            if latest == spec:
                return
            spec = latest

    def create(self, network: Network) -> Network:
        """The first apply of a new network, on the first hypervisor: the record, ACTIVE. If it fails, the libvirt
        network a failed start leaves defined, the workspace and the record are removed, and ApiError (500) says
        why."""
        if not network.managed:
            return network
        try:
            self.converge(network)
        except ProvisionError as exc:
            log.warning("network %s: create failed: %s", network.id, exc)
            try:
                self.destroy(network)
            except ProvisionError as cleanup:
                # Kept in ERROR so that a delete can try again.
                log.error("network %s: cleanup after a failed create failed: %s", network.id, cleanup)
                self.store.set_status(network.id, ERROR)
            else:
                self.store.forget_network(network.id)
            raise ApiError(f"Network could not be created on the hypervisor: {exc}") from None
        self.store.set_hypervisors(network.id, (self.home.name,))
        return self.store.set_status(network.id, ACTIVE) or network

    def apply(self, network: Network) -> Network:
        """Update the network's libvirt_network on every hypervisor carrying it; the record with its new status
        (ACTIVE, or ERROR if one apply failed)."""
        if not network.managed:
            return network
        failed = False
        for host in self.carriers(network):
            try:
                self.converge(network, host)
            except ProvisionError as exc:
                log.warning("network %s: apply on %s failed: %s", network.id, host.name, exc)
                failed = True
        return self.store.set_status(network.id, ERROR if failed else ACTIVE) or network

    def destroy(self, network: Network) -> None:
        """Destroy a managed network's libvirt_network and workspace on every hypervisor carrying it, and a
        libvirt network a failed start left outside Terraform's state (ProvisionError if terraform or libvirt
        fails)."""
        if not network.managed:
            return
        for host in self.carriers(network) or [self.home]:
            self.remove(network, host)

    def remove(self, network: Network, host: Host) -> None:
        """Destroy the network's libvirt_network and workspace on `host` (ProvisionError if that fails)."""
        destroy_network(network.libvirt_network or "", host.uri, self.engine.ctx, self.workspace(network, host))
