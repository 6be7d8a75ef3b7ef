"""config.yaml's `hypervisors:` list (or the one-hypervisor shorthand `libvirt_uri:`), validated.

Each entry is a libvirt host servers may be placed on (api/compute/placement.py):
`{name, uri, zone, cpus, memory_mb, disk_gb, ram_allocation_ratio, cpu_allocation_ratio, known_hosts,
domain_type}`.
`uri` is any libvirt URI, `simulator` (the root's own test-driver node file) or `simulator:NAME` (a node file
of its own under the root, so one machine can simulate several hypervisors).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from provisioner.errors import InputError

SIMULATOR = "simulator"
SIMULATOR_PREFIX = "simulator:"
DEFAULT_ZONE = "nova"
MAX_HYPERVISORS = 64  # bounds every placement decision (each reads each hypervisor's size)
MAX_ZONE = 255  # Nova's availability zone names are at most 255 characters
# This machine's short host name: the one hypervisor's name when config.yaml gives only `libvirt_uri`
# (os-services and os-hypervisors have always called it so).
HOSTNAME = socket.gethostname().split(".")[0] or "localhost"
# Nova's current defaults (nova/conf/compute.py, initial_cpu_allocation_ratio = 4.0 and
# initial_ram_allocation_ratio = 1.0 since 2023.1; before, 16.0 and 1.5); disk is never overcommitted (1.0).
CPU_ALLOCATION_RATIO = 4.0
RAM_ALLOCATION_RATIO = 1.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_KEYS = {"name", "uri", "zone", "cpus", "memory_mb", "disk_gb", "ram_allocation_ratio", "cpu_allocation_ratio",
         "known_hosts", "domain_type"}
DOMAIN_TYPES = ("auto", "kvm", "qemu")


@dataclass(frozen=True)
class HypervisorConfig:
    """One configured hypervisor; None for a capacity figure: libvirt's node info says it."""

    name: str
    uri: str  # as written: a libvirt URI, `simulator` or `simulator:NAME`
    zone: str = DEFAULT_ZONE
    cpus: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    ram_allocation_ratio: float = RAM_ALLOCATION_RATIO
    cpu_allocation_ratio: float = CPU_ALLOCATION_RATIO
    known_hosts: Path | None = None  # pinned host keys for a qemu+ssh URI
    # auto: KVM where this machine's own libvirt really runs it, assumed on a remote host; qemu: TCG (no KVM there)
    domain_type: str = "auto"
    listed: bool = True  # False for the `libvirt_uri:` shorthand: one host, no capacity checks (as before)

    @property
    def simulator_name(self) -> str | None:
        """NAME of a `simulator:NAME` entry, else None."""
        return self.uri[len(SIMULATOR_PREFIX):] if self.uri.startswith(SIMULATOR_PREFIX) else None


def _capacity(entry: Mapping[str, Any], key: str, at: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(at, f"key {key!r}: {value!r} is not a positive integer")
    return value


def _ratio(entry: Mapping[str, Any], key: str, default: float, at: str) -> float:
    value = entry.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1000:
        raise InputError(at, f"key {key!r}: {value!r} is not a number above 0 (at most 1000)")
    return float(value)


def _uri(entry: Mapping[str, Any], at: str) -> str:
    value = entry.get("uri")
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise InputError(at, "key 'uri': a libvirt URI, 'simulator' or 'simulator:NAME' is required")
    if value == SIMULATOR:
        return value
    if value.startswith(SIMULATOR_PREFIX):
        if not _NAME.fullmatch(value[len(SIMULATOR_PREFIX):]):
            raise InputError(at, f"key 'uri': {value!r}: NAME in simulator:NAME is 1 to 63 letters, digits, '.', "
                                 "'_' or '-'")
        return value
    if not urlsplit(value).scheme or "://" not in value:
        raise InputError(at, f"key 'uri': {value!r} is not a libvirt URI (driver[+transport]://[user@host]/path)")
    return value


def _known_hosts(entry: Mapping[str, Any], uri: str, at: str) -> Path | None:
    value = entry.get("known_hosts")
    if value is None:
        return None
    parts = urlsplit(uri)
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in '"\n\r\0'):
        raise InputError(at, f"key 'known_hosts': {value!r} is not an absolute path (without '\"' or line breaks)")
    if not parts.scheme.endswith("+ssh"):
        raise InputError(at, "key 'known_hosts': only for an ssh URI (qemu+ssh://user@host/system)")
    if any(name == "command" for name, _ in parse_qsl(parts.query)):
        raise InputError(at, "key 'known_hosts': the URI's own 'command' parameter would bypass the pinned keys")
    if not Path(value).is_file():
        raise InputError(at, f"key 'known_hosts': {value} is not a file")
    return Path(value)


def _entry(entry: Any, at: str) -> HypervisorConfig:
    if not isinstance(entry, dict):
        raise InputError(at, "must be a mapping with 'name' and 'uri'")
    unknown = sorted(str(k) for k in entry if k not in _KEYS)
    if unknown:
        raise InputError(at, f"unknown key(s) {', '.join(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(at, f"key 'name': {name!r}: 1 to 63 letters, digits, '.', '_' or '-' are required")
    zone = entry.get("zone", DEFAULT_ZONE)
    if not isinstance(zone, str) or not zone.strip() or len(zone) > MAX_ZONE or ":" in zone:
        raise InputError(at, f"key 'zone': {zone!r} is not a zone name (1 to {MAX_ZONE} characters, no ':')")
    uri = _uri(entry, at)
    domain_type = entry.get("domain_type", "auto")
    if domain_type not in DOMAIN_TYPES:
        raise InputError(at, f"key 'domain_type': {domain_type!r}: use one of {', '.join(DOMAIN_TYPES)}")
    return HypervisorConfig(
        name=name, uri=uri, zone=zone, cpus=_capacity(entry, "cpus", at),
        memory_mb=_capacity(entry, "memory_mb", at), disk_gb=_capacity(entry, "disk_gb", at),
        ram_allocation_ratio=_ratio(entry, "ram_allocation_ratio", RAM_ALLOCATION_RATIO, at),
        cpu_allocation_ratio=_ratio(entry, "cpu_allocation_ratio", CPU_ALLOCATION_RATIO, at),
        known_hosts=_known_hosts(entry, uri, at), domain_type=domain_type)


def parse_hypervisors(data: Mapping[str, Any], where: str) -> tuple[HypervisorConfig, ...]:
    """The hypervisors config.yaml (`where`) lists, or the one `libvirt_uri` names (default: the simulator)."""
    listed = data.get("hypervisors")
    if listed is None:
        uri = data.get("libvirt_uri", SIMULATOR)
        if not isinstance(uri, str) or not uri:
            raise InputError(where, f"key 'libvirt_uri': {uri!r} is not a non-empty string")
        return (HypervisorConfig(name=HOSTNAME, uri=uri, listed=False),)
    if "libvirt_uri" in data:
        raise InputError(where, "keys 'libvirt_uri' and 'hypervisors': give one (libvirt_uri is the one-hypervisor "
                                "shorthand)")
    if not isinstance(listed, list) or not listed:
        raise InputError(where, "key 'hypervisors' must be a non-empty list of {name, uri, ...} mappings")
    if len(listed) > MAX_HYPERVISORS:
        raise InputError(where, f"key 'hypervisors': {len(listed)} entries, at most {MAX_HYPERVISORS}")
    found = [_entry(entry, f"{where}: hypervisors[{index}]") for index, entry in enumerate(listed)]
    for key in ("name", "uri"):
        seen: set[str] = set()
        for index, hypervisor in enumerate(found):
            value = getattr(hypervisor, key)
            if value in seen:
                raise InputError(f"{where}: hypervisors[{index}]", f"key {key!r}: {value!r} is listed twice")
            seen.add(value)
    return tuple(found)
