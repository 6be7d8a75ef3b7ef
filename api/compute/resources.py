"""Nova v2.1 request handling."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import falcon

from api.auth import token_of
from api.compute import keys
from api.compute.addresses import AddressRefresher
from api.compute.builder import ServerBuilder
from api.compute.console import ConsoleLog
from api.compute.name_filter import NameFilter
from api.compute.models import ACTIVE, DELETING, PAUSED, SHUTOFF, ComputeStore, Keypair, Server
from api.compute.tasks import ServerTasks
from api.compute.views import flavor_view, keypair_view, link, server_view
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, NotFound
from api.http import field, isotime, read_json, send, send_json_text
from api.network.store import NetworkStore
from api.quota.errors import nova_refusal
from api.quota.models import COMPUTE, NETWORK
from api.quota.store import QuotaStore
from api.volume.store import VolumeStore
from provisioner.excerpt import describe

MAX_VERSION = "2.1"
KEYPAIR_NAME = re.compile(r"[A-Za-z0-9 _.@-]{1,255}")
MAX_CACHED_BASES = 16  # flavor list bodies kept per resource, one per base URL


def version_document(base_url: str) -> dict[str, Any]:
    """Nova's v2.1 version entry (no microversions above 2.1: simpler bodies, all clients accept it)."""
    return {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION, "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url}/compute/v2.1/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}


class Flavors:
    """GET /compute/v2.1/flavors[/detail]."""

    def __init__(self, config: ApiConfig, detail: bool):
        self.config = config
        self.detail = detail
        # Flavors are read at start: the body only depends on the base URL the client used.
        self._bodies: dict[str, str] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self._bodies.get(req.prefix)
        if body is None:
            views = [flavor_view(f, req.prefix) for f in self.config.flavors]
            if not self.detail:
                views = [{k: v[k] for k in ("id", "name", "links")} for v in views]
            if len(self._bodies) >= MAX_CACHED_BASES:  # the Host header is the client's to choose
                self._bodies.clear()
            body = self._bodies[req.prefix] = json.dumps({"flavors": views})
        send_json_text(resp, body)


class FlavorItem:
    """GET /compute/v2.1/flavors/{id} (by id only: clients find by name through the list)."""

    def __init__(self, config: ApiConfig):
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response, flavor_id: str) -> None:
        flavor = next((f for f in self.config.flavors if f.id == flavor_id), None)
        if flavor is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        send(resp, {"flavor": flavor_view(flavor, req.prefix)})


class Keypairs:
    """GET and POST /compute/v2.1/os-keypairs (the caller's own; key_pairs quota per user)."""

    def __init__(self, config: ApiConfig, store: ComputeStore, quotas: QuotaStore):
        self.config = config
        self.store = store
        self.quotas = quotas

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mine = self.store.keypairs.list([token_of(req).user_id])
        send(resp, {"keypairs": [{"keypair": keypair_view(k)} for k in mine]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body, "keypair")
        name = field(body, "name", str, "keypair")
        if not KEYPAIR_NAME.fullmatch(name):
            raise BadRequest("keypair.name", "use 1 to 255 letters, digits, spaces and _ . @ -")
        public = field(body, "public_key", str, "keypair", False)
        private = None
        if public is None:
            public, private = keys.generate()
        keypair = Keypair(id=f"{token.user_id}/{name}", name=name, user_id=token.user_id,
                          public_key=public.strip(), fingerprint=keys.fingerprint(public), created=time.time())
        with self.store.db.transaction():
            self.quotas.check(COMPUTE, token.project_id, {"key_pairs": 1}, token.user_id)
            if self.store.keypairs.get(keypair.id) is not None:
                raise Conflict(f"Key pair '{name}' already exists.")
            self.store.keypairs.insert(keypair)
        send(resp, {"keypair": keypair_view(keypair, private)}, 201 if private is None else 200)


class KeypairItem:
    """GET and DELETE /compute/v2.1/os-keypairs/{name}."""

    def __init__(self, store: ComputeStore):
        self.store = store

    def _get(self, req: falcon.Request, name: str) -> Keypair:
        keypair = self.store.keypairs.get(f"{token_of(req).user_id}/{name}")
        if keypair is None:
            raise NotFound(f"Keypair {name} not found for user {token_of(req).user_id}")
        return keypair

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        keypair = self._get(req, name)
        send(resp, {"keypair": {**keypair_view(keypair), "id": keypair.id, "deleted": False,
                                "created_at": isotime(keypair.created)}})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.store.keypairs.delete(self._get(req, name).id)
        resp.status = 202


class Servers:
    """GET /compute/v2.1/servers[/detail] (filters name, status), POST (202, then BUILD → ACTIVE/ERROR)."""

    def __init__(self, config: ApiConfig, store: ComputeStore, networks: NetworkStore, volumes: VolumeStore,
                 builder: ServerBuilder, tasks: ServerTasks, addresses: AddressRefresher, quotas: QuotaStore):
        self.config = config
        self.quotas = quotas
        self.volumes = volumes
        self.addresses = addresses
        self.store = store
        self.networks = networks
        self.builder = builder
        self.tasks = tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        token = token_of(req)
        everyone = token.is_admin and req.get_param_as_bool("all_tenants", default=False)
        projects = None if everyone else [token.project_id]
        servers = self.store.servers.list(projects)
        name, status = req.get_param("name"), req.get_param("status")
        if name:
            pattern = NameFilter(name)
            servers = [s for s in servers if pattern.search(s.name)]
        if status:
            servers = [s for s in servers if s.status == status.upper()]
        if detail:
            names = {n.id: n.name for n in self.networks.visible_networks(token)}
            attached = self.volumes.attachments(projects)
            views = [server_view(self.addresses.refresh(s), req.prefix, names, attached.get(s.id, []))
                     for s in servers]
        else:
            views = [{"id": s.id, "name": s.name, "links": link(req.prefix, "servers", s.id)} for s in servers]
        send(resp, {"servers": views})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body, "server")
        for key in ("min_count", "max_count"):
            if field(body, key, int, "server", False, 1) != 1:
                raise BadRequest(f"server.{key}", "only one server per request is supported")
        with self.networks.allocating():  # the fixed IPs build() picks are held once the server is inserted
            built = self.builder.build(token, body)
            self._check_quotas(built.server)  # in the same transaction as the insert: no two take the last unit
            self.store.servers.insert(built.server)
        self.tasks.build(built.server, built.spec)
        resp.set_header("Location", f"{req.prefix}/compute/v2.1/servers/{built.server.id}")
        send(resp, {"server": {"id": built.server.id, "links": link(req.prefix, "servers", built.server.id),
                               "adminPass": "", "security_groups": [{"name": "default"}],
                               "OS-DCF:diskConfig": "MANUAL"}}, 202)


    def _check_quotas(self, server: Server) -> None:
        """Nova's quota checks of a new server: its metadata items, then instances, cores and RAM, then its
        NICs against Neutron's port quota (refused as Nova does, 403)."""
        flavor = next(f for f in self.config.flavors if f.id == server.flavor_id)
        self.quotas.check_each(COMPUTE, server.project_id, {"metadata_items": len(server.metadata)})
        self.quotas.check(COMPUTE, server.project_id, {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram})
        self.quotas.check(NETWORK, server.project_id, {"port": len(server.ports)}, refuse=nova_refusal)


class ServerItem:
    """GET and DELETE /compute/v2.1/servers/{id}."""

    def __init__(self, store: ComputeStore, networks: NetworkStore, volumes: VolumeStore, tasks: ServerTasks,
                 addresses: AddressRefresher):
        self.store = store
        self.volumes = volumes
        self.addresses = addresses
        self.networks = networks
        self.tasks = tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        token = token_of(req)
        server = self.addresses.refresh(self.store.server(token, server_id))
        names = {n.id: n.name for n in self.networks.visible_networks(token)}
        attached = self.volumes.attachments([server.project_id]).get(server.id, [])
        send(resp, {"server": server_view(server, req.prefix, names, attached)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        server = self.store.server(token_of(req), server_id)
        if server.task_state != DELETING:
            self.store.change(server.id, task_state=DELETING)
            self.tasks.delete(server)
        resp.status = 204


# Action name -> (power action, statuses it may start from).
ACTIONS = {
    "os-stop": ("stop", (ACTIVE, PAUSED)),
    "os-start": ("start", (SHUTOFF,)),
    "pause": ("pause", (ACTIVE,)),
    "unpause": ("unpause", (PAUSED,)),
}
# Nova's task_state while a power action runs.
TASK_STATES = {"stop": "powering-off", "start": "powering-on", "reboot": "rebooting",
               "hard-reboot": "rebooting_hard", "pause": "pausing", "unpause": "unpausing"}


class ServerAction:
    """POST /compute/v2.1/servers/{id}/action: stop, start, reboot, pause, unpause, console output."""

    def __init__(self, config: ApiConfig, store: ComputeStore, tasks: ServerTasks, uri: str, console: ConsoleLog):
        self.config = config
        self.store = store
        self.tasks = tasks
        self.uri = uri
        self.console = console

    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        body = read_json(req, self.config.max_json_body)
        server = self.store.server(token_of(req), server_id)
        if len(body) != 1:
            raise BadRequest("body", "must hold exactly one action")
        action, arguments = next(iter(body.items()))
        if action == "os-getConsoleOutput":
            length = field(arguments if isinstance(arguments, dict) else {}, "length", int,
                           "os-getConsoleOutput", False, None)
            send(resp, {"output": self.console.tail(server.domain, length)})
            return
        if action == "reboot":
            kind = field(arguments if isinstance(arguments, dict) else {}, "type", str, "reboot", False, "SOFT")
            if kind.upper() not in ("SOFT", "HARD"):
                raise BadRequest("reboot.type", f"{describe(kind)}: use SOFT or HARD")
            power, allowed = ("hard-reboot" if kind.upper() == "HARD" else "reboot"), (ACTIVE,)
        elif action in ACTIONS:
            power, allowed = ACTIONS[action]
        else:
            raise BadRequest("body", f"action {describe(action)} is not supported")
        if server.status not in allowed or server.task_state is not None:
            raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state "
                           f"{server.status.lower()}" + (f", task_state {server.task_state}"
                                                         if server.task_state else ""))
        self.store.change(server.id, task_state=TASK_STATES[power])
        self.tasks.act(server, self.uri, power)
        resp.status = 202

