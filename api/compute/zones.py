"""GET /compute/v2.1/os-availability-zone[/detail]: the zones of the configured hypervisors (config.yaml's
`zone`, `nova` unless set); the detail (an admin's) names each zone's hypervisors and their compute service."""

from __future__ import annotations

import time

import falcon

from api.auth import token_of
from api.compute.placement import Hosts
from api.errors import Forbidden
from api.http import isotime, send

ZONE = "nova"  # the zone of the one hypervisor `libvirt_uri:` names (and os-services')


class AvailabilityZones:
    """The zone list; a zone is available while one of its hypervisors is reachable."""

    def __init__(self, hosts: Hosts):
        self.hosts = hosts

    def _up(self) -> dict[str, bool]:
        """Hypervisor name -> libvirt reaches it."""
        self.hosts.survey(self.hosts.hosts)
        return {host.name: self.hosts.is_up(host) for host in self.hosts.hosts}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        up = self._up()
        send(resp, {"availabilityZoneInfo": [
            {"zoneName": zone, "zoneState": {"available": any(up[h.name] for h in hosts)}, "hosts": None}
            for zone, hosts in self.hosts.zones().items()]})

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
        up, now = self._up(), isotime(time.time())
        zones = [{"zoneName": zone, "zoneState": {"available": any(up[h.name] for h in hosts)},
                  "hosts": {h.name: {"nova-compute": {"available": up[h.name], "active": True, "updated_at": now}}
                            for h in hosts}}
                 for zone, hosts in self.hosts.zones().items()]
        send(resp, {"availabilityZoneInfo": zones})
