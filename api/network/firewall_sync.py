"""Security groups applied: each server port's libvirt nwfilter (api/network/firewall.py) kept equal to the rules
of the server's groups, on the server's hypervisor.

A build defines its ports' filters before its domain is applied (the domain's interfaces reference them, and
libvirt refuses to start a domain whose filter is missing). A change afterwards (a rule added or deleted, a
group added to or removed from a server, a server joining or leaving a group other rules name as their remote
group) queues a SyncFirewall job per server of the project: redefining a filter updates the rules of the
running guests that use it at once (libvirt re-instantiates it). A server's destroyed domain takes its filters
with it. The simulator (libvirt's test driver) has no network filters: there, groups stay records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import libvirt

from api.compute.models import DELETING, ComputeStore, Server
from api.compute.power import connection
from api.compute.tasks import ServerTasks
from api.errors import ApiError
from api.jobs.records import SyncFirewall
from api.network.firewall import PortFilter, filter_name, group_members, port_filter
from api.network.models import SecurityGroup
from api.network.store import NetworkStore
from provisioner.errors import ProvisionError
from provisioner.provider import simulator
from provisioner.spec.model import DomainSpec

log = logging.getLogger("api.network")


class Firewalls:
    """Defines, redefines and removes the servers' port filters."""

    def __init__(self, store: NetworkStore, compute: ComputeStore, tasks: ServerTasks,
                 uri_of: Callable[[Server], str]):
        self.store = store
        self.compute = compute
        self.tasks = tasks
        self.uri_of = uri_of
        tasks.before_build.append(self.before_build)
        tasks.on_destroyed.append(self.destroyed)
        tasks.runner.register(SyncFirewall, self.run, self.failed)

    def groups_of(self, server: Server) -> list[SecurityGroup]:
        """The security groups holding the server."""
        return [g for g in self.store.groups.list([server.project_id]) if g.holds(server)]

    def filters(self, server: Server) -> list[PortFilter]:
        """The filter of each of the server's ports, from its groups' rules as they are now."""
        groups = {g.id for g in self.groups_of(server)}
        rules = [r for r in self.store.rules.list([server.project_id]) if r.security_group_id in groups]
        remote = {r.remote_group_id for r in rules if r.remote_group_id is not None}
        members: dict[str, list[str]] = {}
        if remote:
            named = [g for g in self.store.groups.list() if g.id in remote]
            members = group_members(named, self.compute.listed())
        return [port_filter(port, rules, members) for port in server.nics()]

    def before_build(self, spec: DomainSpec) -> None:
        """ServerTasks.before_build: define the new server's filters on its hypervisor, then have the project's
        other servers take its addresses into rules naming one of its groups as remote."""
        server = self.compute.servers.get(spec.name.removeprefix("srv-"))
        if server is None:
            return
        self.define(server, spec.libvirt_uri)
        self._membership_changed(server)

    def destroyed(self, server_id: str) -> None:
        """ServerTasks.on_destroyed: remove the server's filters (its domain no longer uses them); the rules of
        others that named its groups as remote lose its addresses."""
        server = self.compute.servers.get(server_id)
        if server is None:
            return
        if (uri := self._filtered_on(server)) is not None:
            try:
                with connection(uri) as conn:
                    for port in server.ports:
                        _undefine(conn, filter_name(port["id"]))
            except libvirt.libvirtError as exc:  # the domain is gone; a stale filter blocks nothing
                log.warning("server %s: removing its port filters failed: %s", server_id, exc)
        self._membership_changed(server)

    def changed(self, project_id: str, besides: str | None = None) -> None:
        """A rule or a server's groups changed in the project: queue a sync of each of its servers (but
        `besides`) on a hypervisor that enforces groups."""
        for server in self.compute.listed([project_id]):
            if server.id != besides and self._enforcing_uri(server) is not None:
                self.tasks.runner.submit(SyncFirewall(server.id))

    def run(self, job: SyncFirewall) -> None:
        """Redefine the server's filters (a server gone or going meanwhile: nothing to do)."""
        server = self.compute.servers.get(job.server_id)
        if server is not None and (uri := self._enforcing_uri(server)) is not None:
            self.define(server, uri)

    def failed(self, job: SyncFirewall, reason: str) -> None:
        """The server keeps its status; its fault says its groups' last change is not applied."""
        if self.compute.servers.get(job.server_id) is not None:
            self.compute.change(job.server_id, fault=f"security groups not applied: {reason}")

    def define(self, server: Server, uri: str) -> None:
        """Define (or redefine) the server's port filters on the hypervisor at `uri`; ProvisionError if libvirt
        refuses (the build's fault)."""
        if not server.ports or not self._enforced(uri):
            return
        try:
            with connection(uri) as conn:
                for found in self.filters(server):
                    conn.nwfilterDefineXML(found.xml)
        except libvirt.libvirtError as exc:
            raise ProvisionError(f"the security groups of server {server.id} could not be applied on "
                                 f"{uri}: {exc.get_error_message()}") from None

    def _membership_changed(self, server: Server) -> None:
        """Sync the project's other servers if a rule names one of the server's groups as its remote group."""
        groups = {g.id for g in self.groups_of(server)}
        if any(r.remote_group_id in groups for r in self.store.rules.list([server.project_id])):
            self.changed(server.project_id, besides=server.id)

    def _enforcing_uri(self, server: Server) -> str | None:
        """Where the server's filters are to be kept: _filtered_on, unless it is being deleted."""
        return None if server.task_state == DELETING else self._filtered_on(server)

    def _filtered_on(self, server: Server) -> str | None:
        """The URI of the server's hypervisor if the server has ports there to filter: placed somewhere, on a
        hypervisor config.yaml still lists, not the simulator."""
        if not server.ports or server.hypervisor == "":
            return None
        try:
            uri = self.uri_of(server)
        except ApiError:  # its hypervisor left config.yaml: nothing can reach it
            return None
        return uri if self._enforced(uri) else None

    @staticmethod
    def _enforced(uri: str) -> bool:
        return not simulator.is_simulated(uri)


def _undefine(conn: libvirt.virConnect, name: str) -> None:
    try:
        conn.nwfilterLookupByName(name).undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_NWFILTER:
            raise
