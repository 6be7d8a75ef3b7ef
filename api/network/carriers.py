"""Which hypervisors carry a managed network: the first always, another while a server with a port on it is there.

A server is placed without regard to its networks; its build (ServerTasks.before_build) applies each managed
network it has a port on onto its hypervisor if that one does not carry it yet, and records it on the network.
When a server's domain is destroyed (ServerTasks.on_destroyed), each such network is destroyed on its hypervisor
if no other server there has a port on it (the first hypervisor keeps it: it is made there at its creation). A
lock per network (carriers.lock in its first hypervisor's workspace, so every process of the root takes it, and it
goes with the network) keeps one server's arrival and another's departure from deciding at once.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from api.compute.models import ComputeStore, Server
from api.compute.placement import Host, Hosts
from api.compute.tasks import ServerTasks
from api.network.applier import NetworkApplier
from api.network.models import Network
from api.network.store import NetworkStore
from provisioner.errors import ProvisionError
from provisioner.layout import Layout
from provisioner.locks import exclusive
from provisioner.networks import network_dir
from provisioner.spec.model import DomainSpec

log = logging.getLogger("api.network")


class NetworkCarriers:
    """Applies managed networks where servers using them are built, and removes them where none is left."""

    def __init__(self, store: NetworkStore, applier: NetworkApplier, compute: ComputeStore, hosts: Hosts,
                 tasks: ServerTasks, layout: Layout):
        self.store = store
        self.applier = applier
        self.compute = compute
        self.hosts = hosts
        self.layout = layout
        tasks.before_build.append(self.before_build)
        tasks.on_destroyed.append(self.destroyed)

    def _lock(self, network: Network) -> AbstractContextManager[None]:
        directory = network_dir(self.layout, network.libvirt_network or "")
        return exclusive(directory / "carriers.lock", f"network {network.id}'s hypervisors")

    def _managed(self, server: Server) -> list[Network]:
        """The managed networks the server has a port on."""
        found = [self.store.networks.get(port["network_id"]) for port in server.ports]
        return [n for n in found if n is not None and n.managed]

    def before_build(self, spec: DomainSpec) -> None:
        """Make sure the server's hypervisor carries each managed network it has a port on (ProvisionError, the
        build's fault, if an apply fails)."""
        server = self.compute.servers.get(spec.name.removeprefix("srv-"))
        if server is None or not self.hosts.placing:
            return
        host = self.hosts.of(server)
        for network in self._managed(server):
            with self._lock(network):
                current = self.store.networks.get(network.id)
                if current is None or host in self.applier.carriers(current):
                    continue
                try:
                    self.applier.converge(current, host)
                except ProvisionError as exc:
                    raise ProvisionError(f"network {network.id} could not be applied on hypervisor {host.name}: "
                                         f"{exc}") from None
                latest = self.store.networks.get(network.id) or current
                carried = [h.name for h in self.applier.carriers(latest)]
                self.store.set_hypervisors(network.id, tuple(carried + [host.name]))

    def destroyed(self, server_id: str) -> None:
        """The server's domain is gone: remove each managed network it had a port on from its hypervisor if no
        other server there has one (a failure is logged: the network stays recorded there, a later departure or
        the network's delete retries)."""
        server = self.compute.servers.get(server_id)
        if server is None or not server.hypervisor or not self.hosts.placing:
            return
        host = self.hosts.named(server.hypervisor)
        if host is None or host is self.applier.home:
            return
        for network in self._managed(server):
            with self._lock(network):
                current = self.store.networks.get(network.id)
                if current is None or host not in self.applier.carriers(current) or self._used(current, host, server):
                    continue
                try:
                    self.applier.remove(current, host)
                except ProvisionError as exc:
                    log.warning("network %s: removing it from %s failed: %s", network.id, host.name, exc)
                    continue
                latest = self.store.networks.get(network.id) or current
                self.store.set_hypervisors(network.id, tuple(h.name for h in self.applier.carriers(latest)
                                                             if h is not host))

    def _used(self, network: Network, host: Host, leaving: Server) -> bool:
        """Whether a server on `host` other than `leaving` has a port on the network."""
        return any(s.id != leaving.id and any(p["network_id"] == network.id for p in s.ports)
                   for s in self.hosts.placed_on(host, self.compute.servers.list()))
