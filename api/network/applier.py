"""Neutron networks onto the engine: a managed network's libvirt_network applied or destroyed, in the request.

An apply takes a few seconds (terraform init + apply of one resource), so
network create, subnet create and delete run it synchronously rather than as
a task. A failed create leaves nothing (no record, workspace or libvirt
network) and is an error; a later failed apply leaves the network in ERROR.
The reason is in the workspace's status.json and logs/terraform.log.
"""

from __future__ import annotations

import ipaddress
import logging

from api.engine import Engine
from api.errors import ApiError
from api.network.models import ACTIVE, ERROR, Network
from api.network.store import NetworkStore
from provisioner.errors import ProvisionError
from provisioner.networks import HostAddress, NetworkSpec, apply_network, bridge_name, destroy_network

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
        without one, so a network stays isolated until its first subnet). IPv4 and IPv6 subnets alike: the
        host holds an IPv6 gateway too (guests' NICs are addressed from the IPv4 subnets only)."""
        addresses = tuple(HostAddress(ipaddress.ip_address(s.gateway_ip), ipaddress.ip_network(s.cidr).prefixlen)
                          for s in self.store.subnets_of(network.id) if s.gateway_ip)
        return NetworkSpec(name=network.libvirt_network, bridge=bridge_name(network.id), uri=self.uri,
                           addresses=addresses, forward=self.forward if addresses else None)

    def _converge(self, network: Network) -> None:
        spec = self.spec(network)
        while True:
            apply_network(spec, self.engine.ctx)
            # A subnet changed by another request meanwhile may have been applied before ours: converge again.
            latest = self.spec(network)
            if latest == spec:
                return
            spec = latest

    def create(self, network: Network) -> Network:
        """The first apply of a new network: the record, ACTIVE. If it fails, the libvirt network a failed
        start leaves defined, the workspace and the record are removed, and ApiError (500) says why."""
        if not network.managed:
            return network
        try:
            self._converge(network)
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
        return self.store.set_status(network.id, ACTIVE) or network

    def apply(self, network: Network) -> Network:
        """Update the network's libvirt_network; the record with its new status (ACTIVE or ERROR)."""
        if not network.managed:
            return network
        try:
            self._converge(network)
        except ProvisionError as exc:
            log.warning("network %s: apply failed: %s", network.id, exc)
            return self.store.set_status(network.id, ERROR) or network
        return self.store.set_status(network.id, ACTIVE) or network

    def destroy(self, network: Network) -> None:
        """Destroy a managed network's libvirt_network and workspace, and a libvirt network a failed start
        left outside Terraform's state (ProvisionError if terraform or libvirt fails)."""
        if network.managed:
            destroy_network(network.libvirt_network, self.uri, self.engine.ctx)
