"""Guest IPv4 addresses: a NIC's fixed IPs (allocated from a Neutron subnet), else what libvirt knows
(DHCP leases, then ARP), per NIC MAC.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import libvirt

from api.compute.models import ACTIVE, Server
from api.errors import ApiError
from provisioner.interface_addresses import interface_addresses
from provisioner.provider.simulator import open_readonly

# How often a server without addresses is asked again, at most (seconds).
RECHECK = 10.0


def guest_addresses(uri: str, domain: str) -> dict[str, tuple[str, ...]]:
    """MAC -> IPv4 addresses; empty when the guest has none yet or libvirt cannot tell."""
    sources = (libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP)
    try:
        conn = open_readonly(uri)
    except libvirt.libvirtError:
        return {}
    try:
        dom = conn.lookupByName(domain)
        found: dict[str, tuple[str, ...]] = {}
        for source in sources:
            for iface in interface_addresses(dom, source).values():
                ips = tuple(sorted(a["addr"] for a in iface.get("addrs") or []
                                   if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4))
                if ips and iface.get("hwaddr"):
                    found.setdefault(iface["hwaddr"].lower(), ips)
            if found:
                break
        return found
    except libvirt.libvirtError:
        return {}
    finally:
        conn.close()


def with_addresses(server: Server, found: dict[str, tuple[str, ...]]) -> tuple[dict, ...]:
    """The server's ports with the addresses found for their MACs; a port with fixed IPs keeps them."""
    return tuple(port if port.get("fixed_ips") else
                 {**port, "ips": list(found.get(port["mac"].lower(), port.get("ips") or []))}
                 for port in server.ports)


class AddressRefresher:
    """Fills in addresses of ACTIVE servers that have none, asking libvirt at most every RECHECK seconds."""

    def __init__(self, uri_of: Callable[[Server], str], save: Callable[[str, tuple[dict, ...]], Server | None]):
        self.uri_of = uri_of  # the libvirt URI of a server's own hypervisor
        self.save = save
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    def refresh(self, server: Server) -> Server:
        """`server`, with addresses if libvirt now knows some."""
        if server.status != ACTIVE or all(p.get("ips") for p in server.ports):
            return server
        now = time.monotonic()
        with self._lock:
            if now - self._checked.get(server.id, 0.0) < RECHECK:
                return server
            self._checked[server.id] = now
        try:
            uri = self.uri_of(server)
        except ApiError:  # its hypervisor is no longer in config.yaml: nothing to ask
            return server
        found = guest_addresses(uri, server.domain)
        if not found:
            return server
        return self.save(server.id, with_addresses(server, found)) or server
