"""Nova's os-hosts (admin, up to 2.42: Nova removed it at 2.43): each service as a host entry (a compute host per
hypervisor), a compute host's resources and the usage of its servers per project. Host power actions and
maintenance mode are refused, as Nova's libvirt driver refuses them (it implements neither); so is disabling the
host (the services stay enabled). Nova answers those with 501; here with 409, since this API answers no request
with a 5xx that is not its fault."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from api.auth import token_of
from api.compute.hypervisors import Hypervisor, Hypervisors
from api.compute.microversion import MIN, version_of
from api.compute.models import ComputeStore
from api.compute.services import compute_services
from api.config import ApiConfig, Flavor
from api.errors import Conflict, Forbidden, NotFound
from api.http import read_json, send
from api.microversion import Version
from provisioner.excerpt import cut

LAST = Version(2, 42)


def _admin(req: falcon.Request, rule: str) -> None:
    if version_of(req) > LAST:
        raise NotFound("The os-hosts API was removed at microversion 2.43.")
    if not token_of(req).is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-hosts:{rule} to be performed.")


class ComputeHosts:
    """GET /os-hosts[?zone=], GET and PUT /os-hosts/{host}, GET /os-hosts/{host}/{startup,shutdown,reboot}."""

    def __init__(self, config: ApiConfig, store: ComputeStore, flavors: Callable[[], tuple[Flavor, ...]],
                 hypervisors: Hypervisors):
        self.config = config
        self.store = store
        self.flavors = flavors
        self.hypervisors = hypervisors

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req, "list")
        zone = req.get_param("zone") or None  # a blank zone lists every host, as Nova's
        send(resp, {"hosts": [{"host_name": s.host, "service": s.topic, "zone": s.zone}
                              for s in compute_services(self.hypervisors.hosts) if zone is None or s.zone == zone]})

    def _compute_host(self, name: str) -> Hypervisor:
        found = next((h for h in self.hypervisors.all if h.host.name == name), None)
        if found is None:
            raise NotFound(f"Compute host {cut(name)} could not be found.")
        return found

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, host: str) -> None:
        _admin(req, "show")
        hypervisor = self._compute_host(host)
        detail = hypervisor.detail(MIN)
        by_id = {f.id: f for f in self.flavors()}
        projects: dict[str, list[int]] = {}
        for server in self.hypervisors.hosts.placed_on(hypervisor.host, self.store.listed()):
            flavor = by_id.get(server.flavor_id)
            if flavor is not None:
                used = projects.setdefault(server.project_id, [0, 0, 0])
                used[0] += flavor.vcpus
                used[1] += flavor.ram
                used[2] += flavor.disk
        used_now = [sum(u[i] for u in projects.values()) for i in range(3)]
        rows = [("(total)", [detail["vcpus"], detail["memory_mb"], detail["local_gb"]]), ("(used_now)", used_now),
                ("(used_max)", used_now), *sorted(projects.items())]
        send(resp, {"host": [{"resource": {"host": host, "project": project, "cpu": used[0], "memory_mb": used[1],
                                           "disk_gb": used[2]}} for project, used in rows]})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, host: str) -> None:
        _admin(req, "update")
        read_json(req, self.config.max_json_body)  # status and/or maintenance_mode (api/openapi.yaml)
        self._compute_host(host)
        raise Conflict("Virt driver does not implement host disabling or maintenance mode.")

    def on_get_power(self, req: falcon.Request, resp: falcon.Response, host: str, action: str) -> None:
        _admin(req, action)
        if action not in ("startup", "shutdown", "reboot"):
            raise NotFound(f"No host action {cut(action)}.")
        self._compute_host(host)
        raise Conflict("Virt driver does not implement host power management.")
