"""Which hypervisor a new server goes to, and how to reach the one a server is on.

The rule (Nova's filter scheduler, reduced to what config.yaml describes): the hypervisors of the requested
availability zone whose free vCPUs, RAM and disk hold the flavor; of those, the one with the most free RAM (the
first listed on a tie). Free = size × allocation ratio − the flavors of the servers already placed there. A size
is config.yaml's override, else libvirt's node info (getInfo), and the disk of a local hypervisor the root's file
system (a remote one's disk is not checked without `disk_gb`). A hypervisor libvirt cannot reach is not chosen,
nor one whose nova-compute service an admin disabled or forced down (os-services: Nova's ComputeFilter).

The `libvirt_uri:` shorthand keeps what the API always did: every server on that one hypervisor, no sizes checked.
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import libvirt

from api.compute.models import Server
from api.config import Flavor
from api.config_hypervisors import SIMULATOR, HypervisorConfig
from api.errors import Conflict
from provisioner.errors import ProvisionError
from provisioner.layout import Layout, is_local, is_simulated
from provisioner.provider import simulator
from provisioner.spec.model import DomainSpec
from provisioner.workspace import write_atomic

GIB = 1 << 30
NODE_INFO_TTL = 30.0  # seconds a hypervisor's node info (or its failure) is reused: placements run in a write lock
# Seconds libvirt may take to open a hypervisor and answer getInfo before it counts as down: libvirt has no
# connect timeout of its own (a TCP or TLS host that stopped answering would hold the request for minutes).
PROBE_TIMEOUT = 10.0
# ssh's own bounds for a qemu+ssh hypervisor: a host that is gone fails the connection within seconds.
SSH_CONNECT_TIMEOUT = 5
SSH_ALIVE_INTERVAL = 5
SSH_ALIVE_COUNT = 3
NO_VALID_HOST = "No valid host was found. "  # Nova's NoValidHost message, then the reason


class HypervisorDown(ProvisionError):
    """libvirt cannot reach a hypervisor; the message names it (a build fails with it as its fault)."""


class NoValidHost(Exception):
    """No hypervisor of the zone holds the flavor; the message is Nova's."""


@dataclass(frozen=True)
class Host:
    """A configured hypervisor and the URI libvirt opens it with."""

    config: HypervisorConfig
    uri: str
    ssh_directory: Path | None = None  # where its ssh wrapper lives, for a qemu+ssh hypervisor

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def zone(self) -> str:
        return self.config.zone


@dataclass(frozen=True)
class NodeInfo:
    """What libvirt says of a hypervisor."""

    vcpus: int
    memory_mb: int
    hypervisor_type: str
    version: int


@dataclass(frozen=True)
class Size:
    """A hypervisor's capacity before allocation ratios; disk None: not checked."""

    vcpus: int
    memory_mb: int
    disk_gb: int | None


@dataclass(frozen=True)
class Usage:
    """The flavors of the servers placed on a hypervisor, summed."""

    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    servers: int = 0


def ssh_wrapper(directory: Path, known_hosts: Path | None) -> None:
    """Write the program libvirt runs as `ssh` for one hypervisor: host keys checked strictly (against
    `known_hosts` when given: pinned), never learnt, no prompt, and bounded connect and keepalive times."""
    options = ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
               "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}", "-o", f"ServerAliveInterval={SSH_ALIVE_INTERVAL}",
               "-o", f"ServerAliveCountMax={SSH_ALIVE_COUNT}"]
    if known_hosts is not None:
        # Quoted for ssh, which splits the option's value at blanks into several files.
        options += ["-o", f'UserKnownHostsFile="{known_hosts}"', "-o", "GlobalKnownHostsFile=/dev/null"]
    path = directory / "ssh"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # ssh keeps the first value of an option: these win over what libvirt adds after them (no_verify=1).
    write_atomic(path, f"#!/bin/sh\nexec ssh {shlex.join(options)} \"$@\"\n".encode())
    os.chmod(path, 0o700)


def resolve(config: HypervisorConfig, layout: Layout) -> Host:
    """A configured hypervisor with the URI libvirt opens (a qemu+ssh one runs ssh through its wrapper)."""
    if config.uri == SIMULATOR:
        return Host(config, layout.simulator_uri)
    if config.simulator_name is not None:
        return Host(config, layout.named_simulator_uri(config.simulator_name))
    parts = urlsplit(config.uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not parts.scheme.endswith("+ssh") or any(name == "command" for name, _ in query):
        return Host(config, config.uri)
    directory = layout.simulators / config.name
    uri = urlunsplit(parts._replace(query=urlencode([*query, ("command", str(directory / "ssh"))], safe="/")))
    return Host(config, uri, directory)


class Hosts:
    """The configured hypervisors of one root: placement, sizes, and each server's own."""

    def __init__(self, hypervisors: Iterable[HypervisorConfig], layout: Layout, probe_timeout: float = PROBE_TIMEOUT):
        self.layout = layout
        self.hosts = tuple(resolve(h, layout) for h in hypervisors)
        self.probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._node_info: dict[str, tuple[float, NodeInfo | HypervisorDown]] = {}
        # The hypervisors whose nova-compute service is disabled or forced down (set by api/compute/routes.py to
        # os-services' own store: placement reads it, os-services writes it).
        self.unavailable: Callable[[], Collection[str]] = frozenset

    def prepare(self) -> None:
        """At start: each `simulator:NAME` gets its node file if it has none, each ssh hypervisor its wrapper."""
        for host in self.hosts:
            node = self._node_file(host)
            if node is not None and not node.exists():
                node.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_atomic(node, simulator.EMPTY_NODE.encode())
            if host.ssh_directory is not None:
                ssh_wrapper(host.ssh_directory, host.config.known_hosts)

    @property
    def placing(self) -> bool:
        """False for the `libvirt_uri:` shorthand: one hypervisor, nothing to choose or check."""
        return any(h.config.listed for h in self.hosts)

    def named(self, name: str) -> Host | None:
        """The hypervisor called `name`, or None."""
        return next((h for h in self.hosts if h.name == name), None)

    def zones(self) -> dict[str, list[Host]]:
        """Availability zone -> its hypervisors, in config.yaml's order."""
        found: dict[str, list[Host]] = {}
        for host in self.hosts:
            found.setdefault(host.zone, []).append(host)
        return found

    def of(self, server: Server) -> Host:
        """The hypervisor `server` is on (a record from before placement: the first); Conflict if config.yaml no
        longer lists it."""
        if not server.hypervisor:
            return self.hosts[0]
        host = self.named(server.hypervisor)
        if host is None:
            if not self.placing:  # the one host, renamed (the machine's host name changed)
                return self.hosts[0]
            raise Conflict(f"Instance {server.id} is on hypervisor {server.hypervisor}, which config.yaml no "
                           "longer lists")
        return host

    def uri_of(self, server: Server) -> str:
        """The libvirt URI of the hypervisor `server` is on."""
        return self.of(server).uri

    def check_spec(self, spec: DomainSpec) -> None:
        """ServerTasks.before_build: HypervisorDown unless the hypervisor `spec` is built on is reachable now."""
        host = next((h for h in self.hosts if h.uri == spec.libvirt_uri), None)
        if host is not None and self.placing:
            self.check(host)

    def _node_file(self, host: Host) -> Path | None:
        """The node file of a `simulator:NAME` hypervisor: the host itself (removed, the host is gone)."""
        return simulator.node_file(host.uri) if host.config.simulator_name else None

    def check(self, host: Host, fresh: bool = True) -> None:
        """HypervisorDown, naming `host`, unless libvirt reaches it (now; or as last asked unless `fresh`)."""
        node = self._node_file(host)
        if node is not None and not node.exists():
            raise HypervisorDown(f"hypervisor {host.name} is unreachable: its node file {node} is gone")
        self.node_info(host, fresh=fresh)

    def is_up(self, host: Host) -> bool:
        """Whether libvirt reaches `host` (as last asked, within NODE_INFO_TTL)."""
        try:
            self.check(host, fresh=False)
        except HypervisorDown:
            return False
        return True

    def node_info(self, host: Host, fresh: bool = False) -> NodeInfo:
        """libvirt's node info of `host` (reused for NODE_INFO_TTL unless `fresh`); HypervisorDown naming it."""
        now = time.monotonic()
        with self._lock:
            kept = self._node_info.get(host.uri)
        if kept is None or fresh or now - kept[0] > NODE_INFO_TTL:
            kept = (now, self._probe(host))
            with self._lock:
                self._node_info[host.uri] = kept
        if isinstance(kept[1], HypervisorDown):
            raise kept[1]
        return kept[1]

    def survey(self, hosts: Iterable[Host]) -> None:
        """Ask each remote one of `hosts` whose node info is not fresh, all at once: a list of them waits one
        probe_timeout at most, not one per hypervisor that is down (a simulated one answers at once)."""
        now = time.monotonic()
        with self._lock:
            kept = dict(self._node_info)
        stale = [h for h in hosts if not is_simulated(h.uri)
                 and (h.uri not in kept or now - kept[h.uri][0] > NODE_INFO_TTL)]
        asking = [threading.Thread(target=self.is_up, args=(h,), daemon=True) for h in stale]
        for thread in asking:
            thread.start()
        for thread in asking:
            thread.join()

    def _probe(self, host: Host) -> NodeInfo | HypervisorDown:
        """_read_node_info within probe_timeout: a hypervisor that does not answer by then is down (the thread
        asking it is left to finish, or fail, on its own)."""
        found: list[NodeInfo | HypervisorDown] = []
        asking = threading.Thread(target=lambda: found.append(self._read_node_info(host)), daemon=True,
                                  name=f"hypervisor-probe-{host.name}")
        asking.start()
        asking.join(self.probe_timeout)
        if not found:
            return HypervisorDown(f"hypervisor {host.name} is unreachable: libvirt did not answer within "
                                  f"{self.probe_timeout:g} s")
        return found[0]

    def _read_node_info(self, host: Host) -> NodeInfo | HypervisorDown:
        node = self._node_file(host)
        if node is not None and not node.exists():
            return HypervisorDown(f"hypervisor {host.name} is unreachable: its node file {node} is gone")
        try:
            conn = simulator.open_readonly(host.uri)
        except libvirt.libvirtError as exc:
            return HypervisorDown(f"hypervisor {host.name} is unreachable: {exc.get_error_message()}")
        try:
            info = conn.getInfo()
            return NodeInfo(vcpus=info[2], memory_mb=info[1], hypervisor_type=conn.getType(),
                            version=conn.getVersion())
        except libvirt.libvirtError as exc:
            return HypervisorDown(f"hypervisor {host.name} did not answer: {exc.get_error_message()}")
        finally:
            conn.close()

    def size(self, host: Host) -> Size:
        """`host`'s capacity: config.yaml's figures, libvirt's for those it leaves out (HypervisorDown)."""
        config = host.config
        if config.cpus is None or config.memory_mb is None:
            info = self.node_info(host)
            vcpus, memory = config.cpus or info.vcpus, config.memory_mb or info.memory_mb
        else:
            vcpus, memory = config.cpus, config.memory_mb
        disk = config.disk_gb
        if disk is None and is_local(host.uri):
            disk = shutil.disk_usage(self.layout.root).total // GIB
        return Size(vcpus, memory, disk)

    def placed_on(self, host: Host, servers: Iterable[Server]) -> list[Server]:
        """Those of `servers` placed on `host`."""
        return [s for s in servers if s.hypervisor != "" and self._on(s, host)]

    def usage(self, host: Host, servers: Iterable[Server], flavors: Iterable[Flavor]) -> Usage:
        """What the servers placed on `host` take of it (by their flavors)."""
        by_id = {f.id: f for f in flavors}
        placed = self.placed_on(host, servers)
        sized = [by_id[s.flavor_id] for s in placed if s.flavor_id in by_id]
        return Usage(vcpus=sum(f.vcpus for f in sized), memory_mb=sum(f.ram for f in sized),
                     disk_gb=sum(f.disk for f in sized), servers=len(placed))

    def _on(self, server: Server, host: Host) -> bool:
        if not server.hypervisor:
            return host is self.hosts[0]
        return server.hypervisor == host.name or (not self.placing and host is self.hosts[0])

    def choose(self, flavor: Flavor, zone: str | None, servers: Callable[[], list[Server]],
               flavors: Iterable[Flavor], on: str | None = None) -> Host:
        """The hypervisor a new server of `flavor` goes to in `zone` (None: any); NoValidHost if none holds it.

        `on`: the hypervisor the server's volumes are on (local storage: the volumes' host decides, as Nova's
        libvirt driver with volumes local to a host)."""
        candidates = [h for h in self.hosts if zone is None or h.zone == zone]
        unavailable = self.unavailable()
        reasons = [f"{h.name}: its nova-compute service is disabled or forced down" for h in candidates
                   if h.name in unavailable]
        candidates = [h for h in candidates if h.name not in unavailable]
        if not self.placing and candidates:
            return candidates[0]
        placed, catalog = servers(), list(flavors)
        best: tuple[float, Host] | None = None
        self.survey(candidates)
        if on is not None:
            reasons += [f"{h.name}: the server's volumes are on {on}" for h in candidates if h.name != on]
            candidates = [h for h in candidates if h.name == on]
        for host in candidates:
            try:
                self.check(host, fresh=False)  # as Nova's ComputeFilter: a down host takes nothing
                size = self.size(host)
            except HypervisorDown as exc:
                reasons.append(str(exc))
                continue
            used = self.usage(host, placed, catalog)
            free_ram = size.memory_mb * host.config.ram_allocation_ratio - used.memory_mb
            free_cpus = size.vcpus * host.config.cpu_allocation_ratio - used.vcpus
            free_disk = None if size.disk_gb is None else size.disk_gb - used.disk_gb
            if free_ram < flavor.ram or free_cpus < flavor.vcpus or (free_disk is not None and free_disk < flavor.disk):
                reasons.append(f"{host.name}: {int(free_ram)} MiB RAM, {free_cpus:g} vCPUs"
                               + ("" if free_disk is None else f", {free_disk} GiB disk") + " free")
                continue
            if best is None or free_ram > best[0]:
                best = (free_ram, host)
        if best is None:
            where = f" of availability zone {zone}" if zone else ""
            raise NoValidHost(f"{NO_VALID_HOST}There are not enough hosts available: flavor {flavor.name} "
                              f"({flavor.ram} MiB, {flavor.vcpus} vCPUs, {flavor.disk} GiB) fits on no hypervisor"
                              f"{where} ({'; '.join(reasons)})")
        return best[1]
