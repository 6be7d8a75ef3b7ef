"""Where a guest's SSH server is: an explicit setting, its static IP, or what libvirt knows."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from provisioner.errors import InputError
from provisioner.excerpt import cut

SSH_PORT = 22
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


@dataclass(frozen=True)
class Address:
    """A host (IP or DNS name) and a TCP port."""

    host: str
    port: int = SSH_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str, where: str = "ssh address") -> Address:
    """Parse `HOST[:PORT]` (IPv6 as `[ADDR]:PORT`); raise InputError naming `where`."""
    text = text.strip()
    host, port = text, str(SSH_PORT)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InputError(where, f"{cut(text)} is not HOST[:PORT] (IPv6: [ADDR]:PORT)")
        port = rest[1:] if rest else port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(where, f"{cut(text)}: port must be 1-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise InputError(where, f"{cut(text)}: {cut(host)} is neither an IP address nor a host name") from None
    return Address(host, int(port))


def libvirt_address(uri: str, domain: str) -> Address | None:
    """The guest's first IPv4 address as libvirt knows it (DHCP lease, else ARP); None if none yet."""
    import libvirt

    from provisioner.interface_addresses import interface_addresses
    from provisioner.provider.simulator import open_readonly

    try:
        conn = open_readonly(uri)
    except libvirt.libvirtError:
        return None
    try:
        dom = conn.lookupByName(domain)
        for source in (libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP):
            found = interface_addresses(dom, source)
            addresses = sorted(a["addr"] for iface in found.values() for a in (iface.get("addrs") or [])
                               if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4)
            if addresses:
                return Address(addresses[0])
        return None
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def tcp_refusal(address: Address, timeout: float) -> str | None:
    """Why a TCP connection to `address` fails right now (None: something accepts it).

    Far cheaper than an SSH login attempt, so a booting guest can be watched
    every fraction of a second and SSH tried only once its port answers.
    """
    import socket  # only a post-boot job connects: not loaded by every provision

    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{address}: {exc.strerror or exc}"
