"""A DomainSpec back from its `to_json()` view, so a queued build's spec can live in the task table."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from provisioner.spec.model import Address, DomainSpec, ExtraDisk, ImageRef, Nic


def _address(text: str) -> Address:
    ip, prefix = text.split("/", 1)
    return Address(ipaddress.IPv4Address(ip), int(prefix))


def _nic(data: dict[str, Any]) -> Nic:
    gateway = data.get("gateway")
    return Nic(mac=data["mac"], bridge=data.get("bridge"), network=data.get("network"),
               model=data.get("model", "virtio"), addresses=tuple(_address(a) for a in data.get("addresses", ())),
               gateway=ipaddress.IPv4Address(gateway) if gateway else None,
               resolvers=tuple(ipaddress.IPv4Address(r) for r in data.get("resolvers", ())))


def spec_from_json(data: dict[str, Any]) -> DomainSpec:
    """The DomainSpec whose `to_json()` is `data` (the inverse of DomainSpec.to_json)."""
    values = dict(data)
    values["image"] = ImageRef(**data["image"])
    values["nics"] = tuple(_nic(n) for n in data["nics"])
    values["users"] = tuple(data["users"])
    values["packages"] = tuple(data.get("packages", ()))
    values["extra_disks"] = tuple(ExtraDisk(**d) for d in data.get("extra_disks", ()))
    values["image_digests"] = tuple(tuple(pair) for pair in data.get("image_digests", ()))
    for key in ("data_archive", "input_dir"):
        values[key] = Path(data[key]) if data.get(key) else None
    return DomainSpec(**values)
