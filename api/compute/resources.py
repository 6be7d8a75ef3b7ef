"""Nova v2.1 request handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.addresses import AddressRefresher
from api.compute.block_devices import BlockDevices, local_disks, volume_boot
from api.compute.block_devices import parse as parse_block_devices
from api.compute.builder import ServerBuilder
from api.compute.console import ConsoleLog
from api.compute.flavor_extras import FlavorExtras
from api.compute.flavors import FlavorCatalog
from api.compute.microversion import MAX, MIN, version_of
from api.compute.models import ACTIVE, DELETING, ERROR, PAUSED, SHUTOFF, ComputeStore, Server
from api.compute.tasks import ServerTasks
from api.compute import server_query
from api.compute.server_groups import ServerGroupStore
from api.compute.server_create import admin_password, create_request, update_request
from api.compute.view_cache import ServerViewCache
from api.compute.views import HOST, link, server_view, update_view
from api.config import ApiConfig, Flavor
from api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from api.http import field, read_json, send, send_json_text
from api.identity.tokens import Token
from api.microversion import Version
from api.network.store import NetworkStore
from api.quota.errors import nova_refusal
from api.quota.models import COMPUTE, NETWORK
from api.quota.store import QuotaStore
from api.volume.store import VolumeStore
from provisioner.excerpt import cut, describe



def legacy_version_document(base_url: str) -> dict[str, Any]:
    """Nova's v2.0 entry (SUPPORTED, no microversions), listed first as Nova lists it."""
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url}/compute/v2/"}]}


def version_document(base_url: str) -> dict[str, Any]:
    """Nova's v2.1 version entry, with the microversion range served."""
    return {"id": "v2.1", "status": "CURRENT", "version": str(MAX), "min_version": str(MIN),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url}/compute/v2.1/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}


class Servers:
    """GET /compute/v2.1/servers[/detail] (filters name, status), POST (202, then BUILD → ACTIVE/ERROR)."""

    def __init__(self, config: ApiConfig, catalog: FlavorCatalog, store: ComputeStore, networks: NetworkStore,
                 volumes: VolumeStore, builder: ServerBuilder, tasks: ServerTasks, addresses: AddressRefresher,
                 quotas: QuotaStore, groups: ServerGroupStore, extras: FlavorExtras, block_devices: BlockDevices):
        self.config = config
        self.catalog = catalog
        self.block_devices = block_devices
        self.extras = extras
        self.groups = groups
        self.quotas = quotas
        self.volumes = volumes
        self.addresses = addresses
        self.store = store
        self.networks = networks
        self.builder = builder
        self.tasks = tasks
        self.views = ServerViewCache()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=False)

    def on_get_detail(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._list(req, resp, detail=True)

    def _list(self, req: falcon.Request, resp: falcon.Response, detail: bool) -> None:
        token = token_of(req)
        everyone = token.is_admin and req.get_param_as_bool("all_tenants", default=False)
        projects = None if everyone else [token.project_id]
        # An admin's filters (Nova drops them for others): one project's servers among everyone's, by host.
        wanted_project = req.get_param("tenant_id") or req.get_param("project_id")
        if everyone and wanted_project:
            projects = [wanted_project]
        listed = self.store.listed(projects)
        if token.is_admin and req.get_param("host") not in (None, HOST):
            listed = []  # every server is on this host
        page = server_query.select(req, listed)
        version = version_of(req)
        if detail:
            names = {n.id: n.name for n in self.networks.visible_networks(token)}
            attached = self.volumes.attachments(projects)
            floating = self.networks.floating_by_port()
            flavors = self.catalog.all()
            texts = [self._detail_text(self.addresses.refresh(s), req.prefix, names, attached.get(s.id, []), version,
                                       flavors, token.is_admin, floating)
                     for s in page.servers]
        else:
            texts = [json.dumps({"id": s.id, "name": s.name, "links": link(req.prefix, "servers", s.id)})
                     for s in page.servers]
        text = '{"servers": [' + ", ".join(texts) + "]"
        if page.next_query is not None:
            path = "servers/detail" if detail else "servers"
            links = [{"rel": "next", "href": f"{req.prefix}/compute/v2.1/{path}?{page.next_query}"}]
            text += ', "servers_links": ' + json.dumps(links)
        send_json_text(resp, text + "}")

    def _detail_text(self, server: Server, base_url: str, names: dict[str, str], volume_ids: list[str],
                     version: Version, flavors: tuple[Flavor, ...], admin: bool,
                     floating: dict[str, list[str]]) -> str:
        """A server's detail view as JSON text, the cached one while nothing it shows has changed (view_cache)."""
        flavor = next((f for f in flavors if f.id == server.flavor_id), None)
        nics = tuple((names.get(p["network_id"]), tuple(floating.get(p["id"], ()))) for p in server.ports)
        inputs = (base_url, version, admin, tuple(volume_ids), flavor, nics)
        return self.views.text(server, inputs, lambda: server_view(
            server, base_url, names, volume_ids, version, flavors, single=False, admin=admin, floating=floating))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        whole = read_json(req, self.config.max_json_body)
        body = whole.get("server")
        if not isinstance(body, dict):
            raise BadRequest("server", "the body needs a 'server' object")
        hints = whole.get("os:scheduler_hints", whole.get("OS-SCH-HNT:scheduler_hints")) or {}
        group_id = field(hints if isinstance(hints, dict) else {}, "group", str, "os:scheduler_hints", False)
        request = create_request(body, self.networks.visible_groups(token))
        devices = self.block_devices.with_image(token, body, parse_block_devices(body))
        from_volume = volume_boot(devices)
        flavor = self.catalog.get(str(body.get("flavorRef", "")))
        if flavor is not None and not self.extras.visible(token, flavor):  # private, not shared with the project
            raise BadRequest("server.flavorRef", f"flavor {cut(flavor.id)} does not exist")
        if flavor is not None and not from_volume:
            self._refuse_small_flavor(token, flavor, body.get("imageRef"))
        on = self.block_devices.check(token, devices, request.max_count)
        ephemeral = tuple(local_disks(devices, flavor.ephemeral if flavor is not None else 0))
        servers = []
        with self.networks.allocating():  # the fixed IPs build() picks are held once the servers are inserted
            for index in range(request.max_count):
                built = self.builder.build(token, body, from_volume, on)
                server = replace(built.server, name=request.name_of(built.server.name, index),
                                 description=request.description, security_groups=request.security_groups,
                                 access_ipv4=request.access_ipv4, access_ipv6=request.access_ipv6,
                                 disk_config=request.disk_config, user_data=body.get("user_data"))
                try:  # in the same transaction as the insert: no two take the last unit
                    self._check_quotas(server)
                except ApiError:
                    if index < request.min_count:
                        raise  # the transaction rolls back the servers inserted so far
                    break  # Nova creates as many as the quota allows, between min_count and max_count
                if group_id is not None:
                    self.groups.join(token, group_id, server.id)
                self.store.servers.insert(server)
                servers.append((server, built.spec))
        self.store.changed()  # the inserts are committed now (the table bumped before the commit)
        for server, spec in servers:
            if spec is not None and devices:
                try:  # after the servers' transaction: Cinder's store takes its own lock, then the database's
                    server, spec = self.block_devices.provide(token, server, spec, devices, ephemeral)
                except ApiError as exc:  # taken meanwhile, over a quota: the build fails, as in Nova
                    self.store.change(server.id, status=ERROR, task_state=None,
                                      fault=f"Build of instance {server.id} aborted: {exc.message}")
                    continue
            if spec is not None:  # None: no hypervisor takes it (ERROR, No valid host)
                self.tasks.build(server, spec)
        first = servers[0][0]
        if request.return_reservation_id:
            send(resp, {"reservation_id": request.reservation_id}, 202)
            return
        resp.set_header("Location", f"{req.prefix}/compute/v2.1/servers/{first.id}")
        send(resp, {"server": {"id": first.id, "links": link(req.prefix, "servers", first.id),
                               "adminPass": admin_password(body) or "", "security_groups": [{"name": n} for n in first.security_groups],
                               "OS-DCF:diskConfig": first.disk_config}}, 202)

    def _refuse_small_flavor(self, token: Token, flavor: Flavor, image_id: Any) -> None:
        """Nova's 400 when the flavor has less memory than the image's min_ram."""
        if not isinstance(image_id, str) or not image_id:
            return  # the builder names what is wrong with the imageRef
        try:
            image = self.builder.images.get(token, image_id)
        except NotFound:
            return
        if image.row is not None and image.row.min_ram > flavor.ram:
            raise BadRequest("server.flavorRef", f"flavor {flavor.name}'s memory ({flavor.ram} MiB) is smaller than "
                                                 f"image {image.id}'s min_ram ({image.row.min_ram} MiB)")

    def _check_quotas(self, server: Server) -> None:
        """Nova's quota checks of a new server: its metadata items, then instances, cores and RAM, then its
        NICs against Neutron's port quota (refused as Nova does, 403)."""
        flavor = self.catalog.find(server.flavor_id)
        self.quotas.check_each(COMPUTE, server.project_id, {"metadata_items": len(server.metadata)})
        self.quotas.check(COMPUTE, server.project_id, {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram})
        self.quotas.check(NETWORK, server.project_id, {"port": len(server.ports)}, refuse=nova_refusal)


def refuse_if_locked(req: falcon.Request, server: Server) -> None:
    """Nova's lock: a locked server takes no action or delete but from an admin (409)."""
    if server.locked and not token_of(req).is_admin:
        raise Conflict(f"Instance {server.id} is locked")


class ServerItem:
    """GET, PUT and DELETE /compute/v2.1/servers/{id}."""

    def __init__(self, config: ApiConfig, catalog: FlavorCatalog, store: ComputeStore, networks: NetworkStore,
                 volumes: VolumeStore, tasks: ServerTasks, addresses: AddressRefresher, groups: ServerGroupStore):
        self.config = config
        self.catalog = catalog
        self.groups = groups
        self.store = store
        self.volumes = volumes
        self.addresses = addresses
        self.networks = networks
        self.tasks = tasks

    def view(self, req: falcon.Request, server: Server) -> dict[str, Any]:
        """The server's detail view as GET shows it to this request (a rebuild answers with it too)."""
        return self._view(req, server)

    def _view(self, req: falcon.Request, server: Server) -> dict[str, Any]:
        token = token_of(req)
        server = self.addresses.refresh(server)
        names = {n.id: n.name for n in self.networks.visible_networks(token)}
        attached = self.volumes.attachments([server.project_id]).get(server.id, [])
        return server_view(server, req.prefix, names, attached, version_of(req), self.catalog.all(),
                           group_ids=self.groups.groups_of(server.id, server.project_id), admin=token.is_admin,
                           floating=self.networks.floating_by_port())

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        send(resp, {"server": self._view(req, self.store.server(token_of(req), server_id))})

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        """Rename (and from 2.19 describe) a server; the guest's hostname stays as it was built."""
        server = self.store.server(token_of(req), server_id)
        body = read_json(req, self.config.max_json_body, "server")
        changes = update_request(body)
        updated = self.store.change(server.id, **changes) if changes else server
        if updated is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        send(resp, {"server": update_view(self._view(req, updated), version_of(req))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        server = self.store.server(token_of(req), server_id)
        refuse_if_locked(req, server)
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
RESET_STATES = {"active": ACTIVE, "error": ERROR}  # os-resetState's states and the status each records
# Nova's task_state while a power action runs.
TASK_STATES = {"stop": "powering-off", "start": "powering-on", "reboot": "rebooting",
               "hard-reboot": "rebooting_hard", "pause": "pausing", "unpause": "unpausing"}


class ServerAction:
    """POST /compute/v2.1/servers/{id}/action: stop, start, reboot, pause, unpause, console output."""

    def __init__(self, config: ApiConfig, store: ComputeStore, tasks: ServerTasks, uri_of: Callable[[Server], str],
                 console: ConsoleLog, networks: NetworkStore):
        self.config = config
        self.networks = networks
        self.store = store
        self.tasks = tasks
        self.uri_of = uri_of  # the libvirt URI of a server's own hypervisor
        self.console = console
        # Actions served by modules of their own (resize, rebuild, …): name -> handler(req, resp, server, args).
        self.handlers: dict[str, Callable[[falcon.Request, falcon.Response, Server, Any], None]] = {}

    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        # One action with its arguments, of the shape api/openapi.yaml declares for it (checked by the hook).
        body = read_json(req, self.config.max_json_body)
        server = self.store.server(token_of(req), server_id)
        action, arguments = next(iter(body.items()))
        if action == "os-getConsoleOutput":
            send(resp, {"output": self.console.tail(server.domain, arguments.get("length"))})
            return
        if action in ("lock", "unlock"):
            self._lock(server, action, arguments)
            resp.status = 202
            return
        refuse_if_locked(req, server)
        if action in self.handlers:
            self.handlers[action](req, resp, server, arguments)
            return
        if action == "os-resetState":
            self._reset_state(req, server, arguments)
            resp.status = 202
            return
        if action in ("addSecurityGroup", "removeSecurityGroup"):
            self._security_group(req, server, action, arguments)
            resp.status = 202
            return
        if action in ("restore", "forceDelete"):
            # A delete is never deferred here (no soft delete, as Nova with reclaim_instance_interval 0): no
            # server is ever SOFT_DELETED, the only state these act on.
            raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state "
                           f"{server.status.lower()}")
        if action == "injectNetworkInfo":
            # An admin's; Nova's libvirt driver does nothing for it (the guest's network comes from its seed).
            if not token_of(req).is_admin:
                raise Forbidden("Policy doesn't allow os_compute_api:os-admin-actions:inject_network_info "
                                "to be performed.")
            resp.status = 202
            return
        if action == "reboot":
            power, allowed = ("hard-reboot" if arguments["type"].upper() == "HARD" else "reboot"), (ACTIVE,)
        elif action in ACTIONS:
            power, allowed = ACTIONS[action]
        else:
            raise BadRequest("body", f"action {describe(action)} is not supported")
        if server.status not in allowed or server.task_state is not None:
            raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state "
                           f"{server.status.lower()}" + (f", task_state {server.task_state}"
                                                         if server.task_state else ""))
        self.store.change(server.id, task_state=TASK_STATES[power])
        self.tasks.act(server, self.uri_of(server), power)
        resp.status = 202

    def _lock(self, server: Server, action: str, arguments: Any) -> None:
        """Lock (with a reason from 2.73) or unlock; a server an admin locked is the admin's to unlock."""
        reason = arguments.get("locked_reason") if action == "lock" and isinstance(arguments, dict) else None
        self.store.change(server.id, locked=action == "lock", locked_reason=reason)

    def _reset_state(self, req: falcon.Request, server: Server, arguments: Any) -> None:
        """An admin's os-resetState: the recorded state only (the guest is not touched), task cleared."""
        if not token_of(req).is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.")
        self.store.change(server.id, status=RESET_STATES[arguments["state"]], task_state=None)

    def _security_group(self, req: falcon.Request, server: Server, action: str, arguments: Any) -> None:
        """Give the server a security group of its project, or take one away (by name or id, as Nova)."""
        wanted = arguments["name"]
        group = next((g for g in self.networks.visible_groups(token_of(req))
                      if wanted in (g.name, g.id) and g.project_id == server.project_id), None)
        if group is None:
            raise NotFound(f"Security group {cut(wanted)} not found.")
        names = list(server.security_groups)
        if action == "addSecurityGroup":
            if group.name in names:
                raise BadRequest(f"{action}.name", f"security group {group.name} is already on the server")
            names.append(group.name)
        else:
            if group.name not in names:
                raise BadRequest(f"{action}.name", f"security group {group.name} is not on the server")
            names.remove(group.name)
        self.store.change(server.id, security_groups=tuple(names))
        self.networks.groups_changed(server.project_id)

