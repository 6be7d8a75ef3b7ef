"""Nova's os-hypervisors (admin): the one libvirt host the engine builds on, its size as libvirt reports it
(CPUs, memory), the root's file system as its disk, and the servers' flavors as its usage. From 2.53 the id
is a UUID and search/servers are query parameters; before, {pattern}/search and {pattern}/servers."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import falcon
import libvirt

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore
from api.compute.views import HOST
from api.config import Flavor
from api.errors import Forbidden, NotFound
from api.http import send
from api.microversion import Version
from provisioner.excerpt import cut
from provisioner.provider import simulator

GIB = 1 << 30
UUID_IDS = Version(2, 53)
HYPERVISOR_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"provisioner:hypervisor@{HOST}"))


def _admin(req: falcon.Request) -> None:
    if not token_of(req).is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-hypervisors to be performed.")


class Hypervisor:
    """Reads the host's size and usage for the views."""

    def __init__(self, uri: str, root: Path, store: ComputeStore, flavors: Callable[[], tuple[Flavor, ...]]):
        self.uri = uri
        self.root = root
        self.store = store
        self.flavors = flavors

    def _libvirt(self) -> tuple[int, int, str, int]:
        """(CPUs, memory MiB, hypervisor type, version) from libvirt."""
        conn = simulator.open_readonly(self.uri) if simulator.node_file(self.uri) else libvirt.openReadOnly(self.uri)
        try:
            info = conn.getInfo()
            return info[2], info[1], conn.getType(), conn.getVersion()
        finally:
            conn.close()

    def id(self, version: Version) -> int | str:
        """The hypervisor's id as `version` shows it."""
        return HYPERVISOR_UUID if version >= UUID_IDS else 1

    def summary(self, version: Version) -> dict[str, Any]:
        """The list entry."""
        return {"id": self.id(version), "hypervisor_hostname": HOST, "state": "up", "status": "enabled"}

    def detail(self, version: Version) -> dict[str, Any]:
        """The detail entry, with sizes and usage."""
        cpus, memory, kind, hv_version = self._libvirt()
        disk = shutil.disk_usage(self.root)
        by_id = {f.id: f for f in self.flavors()}
        servers = self.store.servers.list()
        sized = [by_id[s.flavor_id] for s in servers if s.flavor_id in by_id]
        used_ram, used_disk = sum(f.ram for f in sized), sum(f.disk for f in sized)
        cpu_info: Any = {"arch": "x86_64", "model": "", "vendor": "", "features": [], "topology": {}}
        return {**self.summary(version), "vcpus": cpus, "memory_mb": memory, "local_gb": disk.total // GIB,
                "vcpus_used": sum(f.vcpus for f in sized), "memory_mb_used": used_ram, "local_gb_used": used_disk,
                "hypervisor_type": kind, "hypervisor_version": hv_version, "running_vms": len(servers),
                "free_ram_mb": memory - used_ram, "free_disk_gb": disk.free // GIB, "current_workload": 0,
                "disk_available_least": disk.free // GIB, "host_ip": "127.0.0.1",
                "cpu_info": cpu_info if version >= Version(2, 28) else str(cpu_info).replace("'", '"'),
                "service": {"host": HOST, "id": self.id(version), "disabled_reason": None}}

    def servers(self) -> list[dict[str, str]]:
        """The servers on the host (all of them)."""
        return [{"uuid": s.id, "name": s.domain} for s in self.store.servers.list()]


class Hypervisors:
    """GET /os-hypervisors[/detail], /os-hypervisors/{id}, /statistics, /{id}/uptime, /{pattern}/search and
    /{pattern}/servers."""

    def __init__(self, host: Hypervisor):
        self.host = host

    def _matching(self, req: falcon.Request, pattern: str | None) -> bool:
        if pattern is not None and pattern not in HOST:
            raise NotFound(f"No hypervisor matching {cut(pattern)} could be found.")
        return True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        version = version_of(req)
        pattern = req.get_param("hypervisor_hostname_pattern") if version >= UUID_IDS else None
        self._matching(req, pattern)
        entry = self.host.summary(version)
        if version >= UUID_IDS and req.get_param_as_bool("with_servers", default=False):
            entry["servers"] = self.host.servers()
        send(resp, {"hypervisors": [entry]})

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        send(resp, {"hypervisors": [self.host.detail(version_of(req))]})

    def on_get_statistics(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        detail = self.host.detail(version_of(req))
        keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb",
                "free_disk_gb", "current_workload", "running_vms", "disk_available_least")
        send(resp, {"hypervisor_statistics": {"count": 1, **{k: detail[k] for k in keys}}})

    def _one(self, req: falcon.Request, hypervisor_id: str) -> Version:
        _admin(req)
        version = version_of(req)
        if hypervisor_id != str(self.host.id(version)):
            raise NotFound(f"Hypervisor with ID {cut(hypervisor_id)} could not be found.")
        return version

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        version = self._one(req, hypervisor_id)
        send(resp, {"hypervisor": self.host.detail(version)})

    def on_get_uptime(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        version = self._one(req, hypervisor_id)
        seconds = float(Path("/proc/uptime").read_text().split()[0])
        uptime = (f" {time.strftime('%H:%M:%S')} up {int(seconds // 86400)} days, "
                  f"{time.strftime('%H:%M', time.gmtime(seconds))}")
        send(resp, {"hypervisor": {**self.host.summary(version), "uptime": uptime}})

    def on_get_search(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        """{hypervisor_id} is a hostname pattern here (falcon needs one field name per level)."""
        pattern = hypervisor_id
        _admin(req)
        version = version_of(req)
        if version >= UUID_IDS:
            raise NotFound("The resource could not be found.")
        self._matching(req, pattern)
        send(resp, {"hypervisors": [self.host.summary(version)]})

    def on_get_servers(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        pattern = hypervisor_id
        _admin(req)
        version = version_of(req)
        if version >= UUID_IDS:
            raise NotFound("The resource could not be found.")
        self._matching(req, pattern)
        send(resp, {"hypervisors": [{**self.host.summary(version), "servers": self.host.servers()}]})
