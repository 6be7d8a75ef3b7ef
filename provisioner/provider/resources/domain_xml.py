"""libvirt_domain state <-> libvirt domain XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .. import xmlutil as X
from .base import State

# Bytes per unit, as libvirt's <memory unit=…> understands them.
UNITS = {
    "b": 1, "bytes": 1,
    "KB": 10**3, "k": 1024, "KiB": 1024,
    "MB": 10**6, "M": 1024**2, "MiB": 1024**2,
    "GB": 10**9, "G": 1024**3, "GiB": 1024**3,
    "TB": 10**12, "T": 1024**4, "TiB": 1024**4,
}

# Machine-type aliases libvirt/QEMU expand when a domain is defined.
_MACHINE_ALIASES = {"q35": "pc-q35-", "pc": "pc-i440fx-"}


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def build(state: State, uuid: str | None = None, keep_macs: list[str | None] | None = None) -> str:
    """Domain XML for a planned state.

    `keep_macs` carries the MAC addresses libvirt generated for interfaces
    without `mac` across a redefinition, so updating memory does not give a
    guest new NICs.
    """
    root = ET.Element("domain", type=state["type"])
    X.sub(root, "name", state["name"])
    if uuid:
        X.sub(root, "uuid", uuid)
    if state.get("description") is not None:
        X.sub(root, "description", state["description"])
    if state.get("memory") is not None:
        X.sub(root, "memory", state["memory"], unit=state.get("memory_unit") or "KiB")
    if state.get("vcpu") is not None:
        X.sub(root, "vcpu", state["vcpu"])
    _os(root, state.get("os") or {})
    features = state.get("features")
    if features:
        el = X.sub(root, "features")
        if features.get("acpi"):
            X.sub(el, "acpi")
        if features.get("apic") is not None:
            X.sub(el, "apic", eoi=features["apic"].get("eoi"))
    if _get(state, "cpu", "mode"):
        X.sub(root, "cpu", mode=state["cpu"]["mode"])
    devices = X.sub(root, "devices")
    devs = state.get("devices") or {}
    for disk in devs.get("disks") or []:
        _disk(devices, disk)
    for i, nic in enumerate(devs.get("interfaces") or []):
        kept = keep_macs[i] if keep_macs and i < len(keep_macs) else None
        _interface(devices, nic, kept)
    for serial in devs.get("serials") or []:
        t = serial.get("target") or {}
        to_file = _get(serial, "source", "file")
        el = X.sub(devices, "serial", type="file" if to_file else "pty")
        if to_file:
            X.sub(el, "source", path=to_file["path"], append=to_file.get("append"))
        if serial.get("log"):
            X.sub(el, "log", file=serial["log"]["file"], append=serial["log"].get("append"))
        if t.get("port") is not None or t.get("type"):
            X.sub(el, "target", type=t.get("type"), port=t.get("port"))
    for console in devs.get("consoles") or []:
        t = console.get("target") or {}
        el = X.sub(devices, "console", type="pty")
        if t.get("port") is not None or t.get("type"):
            X.sub(el, "target", type=t.get("type"), port=t.get("port"))
    for gfx in devs.get("graphics") or []:
        vnc = gfx.get("vnc")
        if vnc is not None:
            X.sub(devices, "graphics", type="vnc", autoport=vnc.get("auto_port"),
                  port=vnc.get("port"), listen=vnc.get("listen"))
    return X.to_string(root)


def _os(root: ET.Element, os_: State) -> None:
    el = X.sub(root, "os")
    X.sub(el, "type", os_.get("type") or "hvm", arch=os_.get("type_arch"), machine=os_.get("type_machine"))
    for key in ("kernel", "initrd", "cmdline"):
        if os_.get(key):
            X.sub(el, key, os_[key])
    for boot in os_.get("boot_devices") or []:
        X.sub(el, "boot", dev=boot["dev"])


def _disk(devices: ET.Element, disk: State) -> None:
    vol = _get(disk, "source", "volume")
    path = _get(disk, "source", "file", "file")
    kind = "volume" if vol else "file"
    el = X.sub(devices, "disk", type=kind, device=disk.get("device") or "disk")
    drv = disk.get("driver") or {}
    if drv.get("name") or drv.get("type"):
        X.sub(el, "driver", name=drv.get("name"), type=drv.get("type"))
    if vol:
        X.sub(el, "source", pool=vol.get("pool"), volume=vol.get("volume"))
    elif path:
        X.sub(el, "source", file=path)
    tgt = disk.get("target") or {}
    if tgt.get("dev"):
        X.sub(el, "target", dev=tgt["dev"], bus=tgt.get("bus"))
    if disk.get("read_only"):
        X.sub(el, "readonly")


def _interface(devices: ET.Element, nic: State, kept_mac: str | None) -> None:
    bridge = _get(nic, "source", "bridge", "bridge")
    network = _get(nic, "source", "network", "network")
    kind = "bridge" if bridge else "network" if network else "user"
    el = X.sub(devices, "interface", type=kind)
    mac = _get(nic, "mac", "address") or kept_mac
    if mac:
        X.sub(el, "mac", address=mac)
    if bridge:
        X.sub(el, "source", bridge=bridge)
    elif network:
        X.sub(el, "source", network=network)
    if _get(nic, "model", "type"):
        X.sub(el, "model", type=nic["model"]["type"])
    ref = nic.get("filter_ref")
    if ref and ref.get("filter"):
        filterref = X.sub(el, "filterref", filter=ref["filter"])
        for parameter in ref.get("parameters") or []:
            X.sub(filterref, "parameter", name=parameter["name"], value=parameter["value"])


def interface_macs(xml: str) -> list[str | None]:
    """MAC addresses of a domain's interfaces, in order."""
    return [X.get(i, "mac", "address") for i in X.parse(xml).findall("devices/interface")]


def observe(xml: str, *, running: bool, autostart: bool, dom_id: int, prior: State | None) -> State:
    """State of a domain from its (persistent) XML and run state.

    Memory is reported in the prior state's unit (MiB for an import when it
    divides evenly, as our plans write it); a machine type libvirt expanded
    from an alias the prior state used (q35 -> pc-q35-8.2) is reported as
    the alias.
    """
    root = X.parse(xml)
    kib = _memory_kib(root)
    unit = prior.get("memory_unit") if prior else ("MiB" if kib is not None and kib % 1024 == 0 else None)
    memory = None if kib is None else kib * 1024 // UNITS.get(unit or "KiB", 1024)
    os_el = root.find("os")
    machine = X.get(os_el, "type", "machine")
    prior_machine = _get(prior, "os", "type_machine")
    if prior_machine in _MACHINE_ALIASES and machine and machine.startswith(_MACHINE_ALIASES[prior_machine]):
        machine = prior_machine
    devices = root.find("devices")
    return {
        "name": X.get(root, "name"),
        "type": root.get("type"),
        "autostart": autostart,
        "cpu": {"mode": root.find("cpu").get("mode")} if root.find("cpu") is not None else None,
        "description": X.get(root, "description"),
        "features": _features(root.find("features")),
        "devices": {
            "consoles": [_char(c) for c in _all(devices, "console")] or None,
            "disks": [_observe_disk(d) for d in _all(devices, "disk")] or None,
            "graphics": [{"vnc": _vnc(g)} for g in _all(devices, "graphics") if g.get("type") == "vnc"] or None,
            "interfaces": [_observe_interface(i) for i in _all(devices, "interface")] or None,
            "serials": [{**_char(s), "log": _log(s), "source": _serial_source(s)} for s in _all(devices, "serial")]
            or None,
        },
        "memory": memory,
        "memory_unit": unit,
        "os": None if os_el is None else {
            "boot_devices": [{"dev": b.get("dev")} for b in os_el.findall("boot")],
            "cmdline": X.get(os_el, "cmdline"),
            "initrd": X.get(os_el, "initrd"),
            "kernel": X.get(os_el, "kernel"),
            "type": X.get(os_el, "type"),
            "type_arch": X.get(os_el, "type", "arch"),
            "type_machine": machine,
        },
        "running": running,
        "vcpu": X.get_int(root, "vcpu"),
        "id": dom_id,
        "uuid": X.get(root, "uuid"),
    }


def _features(el: ET.Element | None) -> State | None:
    if el is None:
        return None
    apic = el.find("apic")
    return {"acpi": True if el.find("acpi") is not None else None,
            "apic": None if apic is None else {"eoi": apic.get("eoi")}}


def _all(parent: ET.Element | None, tag: str) -> list[ET.Element]:
    return [] if parent is None else parent.findall(tag)


def _memory_kib(root: ET.Element) -> int | None:
    el = root.find("memory")
    if el is None or not el.text:
        return None
    return int(el.text) * UNITS.get(el.get("unit") or "KiB", 1024) // 1024


def _char(el: ET.Element) -> State:
    t = el.find("target")
    if t is None:
        return {"target": None}
    port = t.get("port")
    return {"target": {"port": int(port) if port is not None else None, "type": t.get("type")}}


def _log(el: ET.Element) -> State:
    # Only serials carry it in the plan: libvirt repeats a serial's <log> on the console that mirrors it.
    log = el.find("log")
    return None if log is None else {"file": log.get("file"), "append": log.get("append")}


def _serial_source(el: ET.Element) -> State:
    # Only a file is ever planned; libvirt's pty path (/dev/pts/N) is its own choice, not the plan's.
    src = el.find("source")
    if el.get("type") != "file" or src is None:
        return None
    return {"file": {"path": src.get("path"), "append": src.get("append")}}


def _vnc(el: ET.Element) -> State:
    port = el.get("port")
    return {"auto_port": X.yes_no(el.get("autoport")), "listen": el.get("listen"),
            "port": int(port) if port is not None else None}


def _observe_disk(el: ET.Element) -> State:
    src = el.find("source")
    source = None
    if src is not None:
        vol = X.drop_nulls({"pool": src.get("pool"), "volume": src.get("volume")})
        f = src.get("file")
        source = {"file": {"file": f} if f else None, "volume": vol}
    drv = el.find("driver")
    tgt = el.find("target")
    return {
        "device": el.get("device"),
        "driver": None if drv is None else {"name": drv.get("name"), "type": drv.get("type")},
        "read_only": True if el.find("readonly") is not None else None,
        "source": source,
        "target": None if tgt is None else {"bus": tgt.get("bus"), "dev": tgt.get("dev")},
    }


def _observe_interface(el: ET.Element) -> State:
    mac = X.get(el, "mac", "address")
    model = X.get(el, "model", "type")
    kind = el.get("type")
    src = el.find("source")
    source = None
    if src is not None:
        source = {
            "bridge": {"bridge": src.get("bridge")} if kind == "bridge" and src.get("bridge") else None,
            "network": {"network": src.get("network")} if kind == "network" and src.get("network") else None,
        }
    ref = el.find("filterref")
    filter_ref = None
    if ref is not None:
        parameters = [{"name": p.get("name"), "value": p.get("value")} for p in ref.findall("parameter")]
        filter_ref = {"filter": ref.get("filter"), "parameters": parameters or None}
    return {"mac": {"address": mac} if mac else None, "model": {"type": model} if model else None,
            "source": source, "filter_ref": filter_ref}
