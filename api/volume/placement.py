"""Which hypervisor a new volume lives on, and the hypervisor of each volume and snapshot.

Volumes are files in a hypervisor's pool (local storage, as Nova's libvirt driver with a local Cinder backend):
a volume is made on one hypervisor and stays there. A new blank or image volume goes to the hypervisor of its
`availability_zone` (any zone if none is asked) with the most free disk that libvirt reaches; a copy of a snapshot
or volume goes where its source is. A record from before (no hypervisor) is on the first listed hypervisor.

Free disk = the hypervisor's disk (config.yaml's `disk_gb`, else a local hypervisor's file system) − the flavors'
disks of the servers placed there − the volumes and snapshots made there. A hypervisor whose disk is not known (a
remote one without `disk_gb`) is chosen only when no hypervisor with a known disk is up in the zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from api.compute.models import Server
from api.compute.placement import Host, HypervisorDown, Hosts
from api.config import Flavor
from api.errors import BadRequest, Conflict
from api.volume.models import Snapshot, Volume
from provisioner.excerpt import describe

NO_VALID_BACKEND = "No valid backend was found. "  # Cinder's NoValidBackend, then the reason


@dataclass(frozen=True)
class Placed:
    """Where a new volume goes: its hypervisor (None: none takes it, `reason` says why) and its zone."""

    host: Host | None
    zone: str
    reason: str | None = None


class VolumePlacement:
    """The hypervisors volumes live on (api.compute.placement.Hosts), and the disk their servers and volumes use."""

    def __init__(self, hosts: Hosts, volumes: Callable[[], Iterable[Volume]],
                 snapshots: Callable[[], Iterable[Snapshot]], servers: Callable[[], list[Server]],
                 flavors: Callable[[], Iterable[Flavor]]):
        self.hosts = hosts
        self.volumes = volumes
        self.snapshots = snapshots
        self.servers = servers
        self.flavors = flavors

    def host_of(self, hypervisor: str) -> Host:
        """The hypervisor a volume or snapshot recorded on `hypervisor` is on ("": the first listed); Conflict if
        config.yaml no longer lists it."""
        if not hypervisor or not self.hosts.placing:
            return self.hosts.hosts[0]
        host = self.hosts.named(hypervisor)
        if host is None:
            raise Conflict(f"hypervisor {hypervisor} is no longer listed in config.yaml")
        return host

    def name_of(self, hypervisor: str) -> str:
        """The name of the hypervisor recorded as `hypervisor` ("" on a record from before: the first's)."""
        return hypervisor or self.hosts.hosts[0].name

    def zone_names(self) -> list[str]:
        """The availability zones, in config.yaml's order."""
        return list(self.hosts.zones())

    def check_zone(self, zone: str | None, where: str) -> None:
        """Cinder's 400 for a zone no hypervisor is in."""
        if zone is not None and zone not in self.hosts.zones():
            raise BadRequest(where, f"Invalid input received: Availability zone {describe(zone)} is invalid.")

    def same_zone(self, zone: str | None, hypervisor: str, what: str, where: str) -> Placed:
        """A copy of a `what` (snapshot, source volume) on `hypervisor`: it goes there; Cinder's 400 if the zone
        asked for is another."""
        host = self.host_of(hypervisor)
        if zone is not None and zone != host.zone:
            raise BadRequest(where, f"Invalid input received: Volume must be in the same availability zone as the "
                                    f"{what} (availability zone {host.zone}, hypervisor {host.name})")
        return Placed(host, host.zone)

    def used_gb(self, host: Host) -> int:
        """GiB of `host`'s disk its servers' flavors, volumes and snapshots take."""
        servers = self.hosts.usage(host, self.servers(), self.flavors()).disk_gb
        # A volume no hypervisor took (scheduled False) is nowhere.
        volumes = sum(v.size for v in self.volumes() if v.scheduled and self.name_of(v.hypervisor) == host.name)
        snapshots = sum(s.size for s in self.snapshots() if self.name_of(s.hypervisor) == host.name)
        return servers + volumes + snapshots

    def choose(self, zone: str | None, size: int) -> Placed:
        """The hypervisor of `zone` (None: any) with the most free disk that libvirt reaches and that holds `size`
        GiB; Placed(None, reason) if none does (the volume is then recorded in error, as Cinder's scheduler)."""
        candidates = [h for h in self.hosts.hosts if zone is None or h.zone == zone]
        if not self.hosts.placing:
            return Placed(candidates[0], candidates[0].zone)
        self.hosts.survey(candidates)
        best: tuple[float, int, Host] | None = None  # (known disk first, free GiB, host)
        reasons = []
        for index, host in enumerate(candidates):
            try:
                self.hosts.check(host, fresh=False)
                disk = self.hosts.size(host).disk_gb
            except HypervisorDown as exc:
                reasons.append(str(exc))
                continue
            free = None if disk is None else disk - self.used_gb(host)
            if free is not None and free < size:
                reasons.append(f"{host.name}: {free} GiB disk free")
                continue
            rank = (1.0 if free is not None else 0.0, free if free is not None else -index)
            if best is None or rank > best[:2]:
                best = (*rank, host)
        if best is None:
            where = f" of availability zone {zone}" if zone else ""
            reason = f"{NO_VALID_BACKEND}No hypervisor{where} holds a {size} GiB volume ({'; '.join(reasons)})"
            return Placed(None, zone or self.hosts.hosts[0].zone, reason)
        return Placed(best[2], best[2].zone)
