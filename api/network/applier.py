"""Neutron networks onto the engine: a managed network's libvirt_network applied or destroyed, in the request.

An apply takes a few seconds (terraform init + apply of one resource), so
network create, subnet create and delete run it synchronously rather than as
a task. A failed apply leaves the network in ERROR; the reason is in its
workspace's status.json and logs/terraform.log.
"""

from __future__ import annotations

import ipaddress
import logging

from api.engine import Engine
from api.network.models import ACTIVE, ERROR, Network
from api.network.store import NetworkStore
from provisioner.errors import ProvisionError
from provisioner.networks import NetworkSpec, apply_network, bridge_name, destroy_network
from provisioner.spec.model import Address

log = logging.getLogger("api.network")


class NetworkApplier:
    """Converges managed networks on one hypervisor; provider networks and the default are left alone."""

    def __init__(self, store: NetworkStore, engine: Engine, uri: str, forward: str | None = None):
        self.store = store
        self.engine = engine  # its pipeline context, read when used: a stand-in engine may lack one
        self.uri = uri
        self.forward = forward

    def spec(self, network: Network) -> NetworkSpec:
        """The libvirt network of a managed network: the host holds each subnet's gateway; forwarding as
        configured (`network_forward`; none: isolated) once it has an address (libvirt refuses nat and route
        without one, so a network stays isolated until its first subnet)."""
        addresses = tuple(Address(ipaddress.IPv4Address(s.gateway_ip), ipaddress.IPv4Network(s.cidr).prefixlen)
                          for s in self.store.subnets_of(network.id) if s.gateway_ip)
        return NetworkSpec(name=network.libvirt_network, bridge=bridge_name(network.id), uri=self.uri,
                           addresses=addresses, forward=self.forward if addresses else None)

    def apply(self, network: Network) -> Network:
        """Create or update the network's libvirt_network; the record with its new status (ACTIVE or ERROR)."""
        if not network.managed:
            return network
        spec = self.spec(network)
        try:
            while True:
                apply_network(spec, self.engine.ctx)
                # A subnet changed by another request meanwhile may have been applied before ours: converge again.
                latest = self.spec(network)
                if latest == spec:
                    break
                spec = latest
        except ProvisionError as exc:
            log.warning("network %s: apply failed: %s", network.id, exc)
            return self.store.set_status(network.id, ERROR) or network
        return self.store.set_status(network.id, ACTIVE) or network

    def destroy(self, network: Network) -> None:
        """Destroy a managed network's libvirt_network and workspace (ProvisionError if terraform fails)."""
        if network.managed:
            destroy_network(network.libvirt_network, self.engine.ctx)
