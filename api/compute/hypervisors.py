"""Nova's os-hypervisors (admin): one entry per configured hypervisor (api/compute/placement.py), its size as
config.yaml or libvirt reports it (CPUs, memory; a local one's disk is the root's file system), the flavors of the
servers placed on it as its usage, and state "down" when libvirt cannot reach it. From 2.53 the id is a UUID and
search/servers are query parameters; before, {pattern}/search and {pattern}/servers."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import falcon

from api.auth import token_of
from api.compute.microversion import version_of
from api.compute.models import ComputeStore
from api.compute.placement import Host, Hosts, HypervisorDown, NodeInfo
from api.compute.services import ServiceStates
from api.config import Flavor
from api.errors import Forbidden, NotFound
from api.http import send
from api.microversion import Version
from provisioner.excerpt import cut
from provisioner.layout import is_local

GIB = 1 << 30
UUID_IDS = Version(2, 53)


def hypervisor_uuid(name: str) -> str:
    """A hypervisor's id from 2.53, stable per name (the one host's is the same as before several were)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"provisioner:hypervisor@{name}"))


def _admin(req: falcon.Request) -> None:
    if not token_of(req).is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-hypervisors to be performed.")


class Hypervisor:
    """One configured hypervisor as the views show it."""

    def __init__(self, host: Host, number: int, hosts: Hosts, store: ComputeStore,
                 flavors: Callable[[], tuple[Flavor, ...]], states: ServiceStates):
        self.host = host
        self.number = number  # its id before 2.53: its place in config.yaml, from 1
        self.hosts = hosts
        self.store = store
        self.flavors = flavors
        self.states = states

    def _node_info(self) -> NodeInfo | None:
        """libvirt's node info, None when the hypervisor is down."""
        if not self.hosts.is_up(self.host):
            return None
        try:
            return self.hosts.node_info(self.host)
        except HypervisorDown:  # went down since
            return None

    def id(self, version: Version) -> int | str:
        """The hypervisor's id as `version` shows it."""
        return hypervisor_uuid(self.host.name) if version >= UUID_IDS else self.number

    def summary(self, version: Version, info: NodeInfo | None | bool = True) -> dict[str, Any]:
        """The list entry (`info` True: ask libvirt whether it is up)."""
        if info is True:
            info = self._node_info()
        # As Nova: status is its nova-compute's (disabled by an admin), state down also when forced down.
        service = self.states.of_compute(self.host.name)
        return {"id": self.id(version), "hypervisor_hostname": self.host.name,
                "state": "up" if info and not service.forced_down else "down",
                "status": "disabled" if service.disabled else "enabled"}

    def detail(self, version: Version) -> dict[str, Any]:
        """The detail entry, with sizes and usage (a down hypervisor's: config.yaml's figures, else 0)."""
        info = self._node_info()
        config = self.host.config
        cpus = config.cpus or (info.vcpus if info else 0)
        memory = config.memory_mb or (info.memory_mb if info else 0)
        if is_local(self.host.uri):
            disk = shutil.disk_usage(self.hosts.layout.root)
            total_gb, free_gb = config.disk_gb or disk.total // GIB, disk.free // GIB
        else:
            total_gb = free_gb = config.disk_gb or 0
        used = self.hosts.usage(self.host, self.store.servers.list(), self.flavors())
        if config.disk_gb:
            free_gb = max(0, config.disk_gb - used.disk_gb)
        cpu_info: Any = {"arch": "x86_64", "model": "", "vendor": "", "features": [], "topology": {}}
        return {**self.summary(version, info), "vcpus": cpus, "memory_mb": memory, "local_gb": total_gb,
                "vcpus_used": used.vcpus, "memory_mb_used": used.memory_mb, "local_gb_used": used.disk_gb,
                "hypervisor_type": info.hypervisor_type if info else "QEMU",
                "hypervisor_version": info.version if info else 0, "running_vms": used.servers,
                "free_ram_mb": memory - used.memory_mb, "free_disk_gb": free_gb, "current_workload": 0,
                "disk_available_least": free_gb, "host_ip": "127.0.0.1" if is_local(self.host.uri) else None,
                "cpu_info": cpu_info if version >= Version(2, 28) else str(cpu_info).replace("'", '"'),
                "service": {"host": self.host.name, "id": self.id(version),
                            "disabled_reason": self.states.of_compute(self.host.name).disabled_reason}}

    def uptime(self) -> str:
        """`uptime`'s line: this machine's for a local hypervisor; a remote one's is not asked (empty)."""
        if not is_local(self.host.uri):
            return ""
        seconds = float(Path("/proc/uptime").read_text().split()[0])
        return (f" {time.strftime('%H:%M:%S')} up {int(seconds // 86400)} days, "
                f"{time.strftime('%H:%M', time.gmtime(seconds))}")

    def servers(self) -> list[dict[str, str]]:
        """The servers placed on this hypervisor."""
        return [{"uuid": s.id, "name": s.domain} for s in self.hosts.placed_on(self.host, self.store.servers.list())]


class Hypervisors:
    """GET /os-hypervisors[/detail], /os-hypervisors/{id}, /statistics, /{id}/uptime, /{pattern}/search and
    /{pattern}/servers."""

    def __init__(self, hosts: Hosts, store: ComputeStore, flavors: Callable[[], tuple[Flavor, ...]],
                 states: ServiceStates):
        self.hosts = hosts
        self.all = [Hypervisor(host, number, hosts, store, flavors, states)
                    for number, host in enumerate(hosts.hosts, 1)]

    def _matching(self, pattern: str | None) -> list[Hypervisor]:
        """The hypervisors whose name holds `pattern` (Nova's LIKE %pattern%); NotFound if none."""
        found = [h for h in self.all if pattern is None or pattern in h.host.name]
        if not found:
            raise NotFound(f"No hypervisor matching {cut(pattern or '')} could be found.")
        self.hosts.survey(h.host for h in found)
        return found

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        version = version_of(req)
        pattern = req.get_param("hypervisor_hostname_pattern") if version >= UUID_IDS else None
        entries = []
        for hypervisor in self._matching(pattern):
            entry = hypervisor.summary(version)
            if version >= UUID_IDS and req.get_param_as_bool("with_servers", default=False):
                entry["servers"] = hypervisor.servers()
            entries.append(entry)
        send(resp, {"hypervisors": entries})

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        version = version_of(req)
        self.hosts.survey(self.hosts.hosts)
        send(resp, {"hypervisors": [h.detail(version) for h in self.all]})

    def on_get_statistics(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        self.hosts.survey(self.hosts.hosts)
        details = [h.detail(version_of(req)) for h in self.all]
        keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb",
                "free_disk_gb", "current_workload", "running_vms", "disk_available_least")
        send(resp, {"hypervisor_statistics": {"count": len(details),
                                              **{k: sum(d[k] for d in details) for k in keys}}})

    def _one(self, req: falcon.Request, hypervisor_id: str) -> tuple[Hypervisor, Version]:
        _admin(req)
        version = version_of(req)
        found = next((h for h in self.all if str(h.id(version)) == hypervisor_id), None)
        if found is None:
            raise NotFound(f"Hypervisor with ID {cut(hypervisor_id)} could not be found.")
        return found, version

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        hypervisor, version = self._one(req, hypervisor_id)
        send(resp, {"hypervisor": hypervisor.detail(version)})

    def on_get_uptime(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        hypervisor, version = self._one(req, hypervisor_id)
        send(resp, {"hypervisor": {**hypervisor.summary(version), "uptime": hypervisor.uptime()}})

    def on_get_search(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        """{hypervisor_id} is a hostname pattern here (falcon needs one field name per level)."""
        pattern = hypervisor_id
        _admin(req)
        version = version_of(req)
        if version >= UUID_IDS:
            raise NotFound("The resource could not be found.")
        send(resp, {"hypervisors": [h.summary(version) for h in self._matching(pattern)]})

    def on_get_servers(self, req: falcon.Request, resp: falcon.Response, hypervisor_id: str) -> None:
        pattern = hypervisor_id
        _admin(req)
        version = version_of(req)
        if version >= UUID_IDS:
            raise NotFound("The resource could not be found.")
        send(resp, {"hypervisors": [{**h.summary(version), "servers": h.servers()} for h in self._matching(pattern)]})
