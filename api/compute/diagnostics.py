"""GET /compute/v2.1/servers/{id}/diagnostics (admin): the guest's domain as libvirt reports it (state,
vCPUs and CPU time, memory, its NICs' and disks' counters where libvirt has them). Before 2.48 in the
libvirt driver's free-form keys, from 2.48 in Nova's standard form."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable

import falcon
import libvirt

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore, Server
from api.errors import Conflict, Forbidden
from api.http import send
from api.microversion import Version
from provisioner.provider import simulator

STANDARD = Version(2, 48)
# libvirt's domain states -> Nova's diagnostics states.
STATES = {0: "pending", 1: "running", 2: "running", 3: "paused", 4: "shutdown", 5: "shutdown", 6: "crashed",
          7: "suspended"}


def _stats(call: Any, device: str) -> tuple[int, ...] | None:
    """A device's counters, None where libvirt has none for it (the test driver, a device not started)."""
    try:
        return tuple(call(device))
    except libvirt.libvirtError:
        return None


def read_domain(uri: str, domain: str) -> dict[str, Any]:
    """The domain's figures from libvirt (read-only), or Conflict if there is no such domain."""
    conn = simulator.open_readonly(uri) if simulator.node_file(uri) else libvirt.openReadOnly(uri)
    try:
        try:
            dom = conn.lookupByName(domain)
        except libvirt.libvirtError:
            raise Conflict(f"Cannot get diagnostics of domain {domain}: libvirt has no such domain") from None
        state, max_kib, used_kib, cpus, cpu_ns = dom.info()
        tree = ET.fromstring(dom.XMLDesc(0))
        nics = [(i.find("mac").get("address") if i.find("mac") is not None else None,
                 i.find("target").get("dev") if i.find("target") is not None else None)
                for i in tree.iterfind("devices/interface")]
        disks = [d.find("target").get("dev") for d in tree.iterfind("devices/disk") if d.find("target") is not None]
        return {"state": state, "type": tree.get("type"), "max_kib": max_kib, "used_kib": used_kib, "cpus": cpus, "cpu_ns": cpu_ns,
                "nics": [(mac, _stats(dom.interfaceStats, dev) if dev else None) for mac, dev in nics],
                "disks": [(dev, _stats(dom.blockStats, dev)) for dev in disks]}
    finally:
        conn.close()


def standard(figures: dict[str, Any]) -> dict[str, Any]:
    """2.48's form."""
    def nic(mac: str | None, stats: tuple[int, ...] | None) -> dict[str, Any]:
        rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, tx_packets, tx_errs, tx_drop = stats or (None,) * 8
        return {"mac_address": mac, "rx_octets": rx_bytes, "rx_errors": rx_errs, "rx_drop": rx_drop,
                "rx_packets": rx_packets, "rx_rate": None, "tx_octets": tx_bytes, "tx_errors": tx_errs,
                "tx_drop": tx_drop, "tx_packets": tx_packets, "tx_rate": None}

    def disk(stats: tuple[int, ...] | None) -> dict[str, Any]:
        read_requests, read_bytes, write_requests, write_bytes, errors = stats or (None,) * 5
        return {"read_bytes": read_bytes, "read_requests": read_requests, "write_bytes": write_bytes,
                "write_requests": write_requests, "errors_count": errors}

    return {"state": STATES.get(figures["state"], "pending"), "driver": "libvirt", "hypervisor": figures["type"],
            "hypervisor_os": "linux", "uptime": None, "config_drive": False, "num_cpus": figures["cpus"],
            "num_nics": len(figures["nics"]), "num_disks": len(figures["disks"]),
            "memory_details": {"maximum": figures["max_kib"] // 1024, "used": figures["used_kib"] // 1024},
            "cpu_details": [{"id": None, "time": figures["cpu_ns"], "utilisation": None}],
            "nic_details": [nic(mac, stats) for mac, stats in figures["nics"]],
            "disk_details": [disk(stats) for _, stats in figures["disks"]]}


def legacy(figures: dict[str, Any]) -> dict[str, Any]:
    """The libvirt driver's keys before 2.48: memory in KiB, CPU time, per-device counters."""
    body: dict[str, Any] = {"cpu_time": figures["cpu_ns"], "memory": figures["max_kib"],
                            "memory-actual": figures["used_kib"]}
    for index, (_, stats) in enumerate(figures["nics"]):
        if stats:
            for name, value in zip(("rx", "rx_packets", "rx_errors", "rx_drop", "tx", "tx_packets", "tx_errors",
                                    "tx_drop"), stats):
                body[f"nic{index}_{name}"] = value
    for dev, stats in figures["disks"]:
        if stats:
            for name, value in zip(("read_req", "read", "write_req", "write", "errors"), stats):
                body[f"{dev}_{name}"] = value
    return body


class Diagnostics:
    """The diagnostics of one server's domain."""

    def __init__(self, store: ComputeStore, uri_of: Callable[[Server], str]):
        self.store = store
        self.uri_of = uri_of  # the libvirt URI of a server's own hypervisor

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        token = token_of(req)
        if not token.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-server-diagnostics to be performed.")
        server = self.store.server(token, server_id)
        if server.status == "BUILD":
            raise Conflict(f"Cannot 'get_diagnostics' instance {server.id} while it is in vm_state building")
        figures = read_domain(self.uri_of(server), server.domain)
        send(resp, standard(figures) if version_of(req) >= STANDARD else legacy(figures))
