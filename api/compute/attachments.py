"""Nova's os-volume_attachments: attach and detach change the server's plan and re-apply it.

An attached volume is a disk of the server's DomainSpec (`volumes`) that
refers to the volume's own workspace by pool and name. Attach and detach
mark the volume (attaching / detaching), then queue a ConvergeVolumes job on
the server (api.jobs), which re-converges the server's domain with the
volumes attached at that moment (the domain restarts to see the change).
Work on one server runs in order, so an attach sent during a build waits
for it. A failed (or dropped) job puts each volume back as it was, with the
reason; a dropped one also leaves the server ERROR (its domain may be
half-applied).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.compute.microversion import MIN, version_of
from api.compute.models import ACTIVE, DELETING, PAUSED, SHUTOFF, ComputeStore, Server
from api.compute.tasks import ServerTasks
from api.compute.views import VM_STATES
from api.config import ApiConfig
from api.engine import Engine
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import field, read_json, send
from api.jobs.records import ConvergeVolumes
from api.microversion import Version
from api.volume.models import ATTACHING, DETACHING, IN_USE, Volume
from api.volume.placement import VolumePlacement
from api.volume.store import VolumeStore
from provisioner.excerpt import describe
from provisioner.spec.codec import spec_from_json
from provisioner.spec.model import DomainSpec
from provisioner.volumes import attachment

LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Nova attaches to servers in these states (a stopped or paused one is started by the re-apply).
ATTACHABLE = (ACTIVE, SHUTOFF, PAUSED)


def attachment_view(volume: Volume, version: Version = MIN, server: Server | None = None) -> dict[str, Any]:
    """Nova's volumeAttachment: the attachment id is the volume id; `tag` (none here) from 2.70, and from 2.79
    `delete_on_termination` (true only for a volume the server's block device mapping said so of)."""
    body: dict[str, Any] = {"id": volume.id, "volumeId": volume.id, "serverId": volume.server_id,
                            "device": volume.device}
    if version >= Version(2, 70):
        body["tag"] = None
    if version >= Version(2, 79):
        body["delete_on_termination"] = server is not None and any(
            r["volume_id"] == volume.id and r["delete_on_termination"] for r in server.block_devices)
    return body


class Attachments:
    """Re-converges a server with its attached volumes (the ConvergeVolumes job)."""

    def __init__(self, compute: ComputeStore, volumes: VolumeStore, engine: Engine, tasks: ServerTasks,
                 placement: VolumePlacement):
        self.compute = compute
        self.volumes = volumes
        self.placement = placement
        self.engine = engine
        self.tasks = tasks
        tasks.runner.register(ConvergeVolumes, self.run, self.failed, self.dropped)
        tasks.on_destroyed.append(self.release)

    def spec(self, server: Server) -> DomainSpec:
        """The server's DomainSpec as last provisioned (its workspace's spec.json)."""
        path = self.engine.layout.domain_dir(server.domain) / "spec.json"
        return spec_from_json(json.loads(path.read_text()))

    def disk_names(self, server: Server, requested: str | None) -> list[str]:
        """The guest disk names a volume may take: /dev/vdX after the system disk (vda) and any data disks."""
        first = 1 + len(self.spec(server).extra_disks)
        names = [f"/dev/vd{letter}" for letter in LETTERS[first:]]
        if requested is not None and requested not in names:
            raise BadRequest("volumeAttachment.device", f"{describe(requested)}: use one of {names[0]} … {names[-1]}")
        return names

    def attach(self, server: Server, volume: Volume, requested: str | None,
               delete_on_termination: bool = False) -> Volume:
        """Reserve the volume for the server (as `requested`, or the first free disk name) and queue the re-apply;
        `delete_on_termination` (2.79): the server's delete deletes it."""
        if server.status not in ATTACHABLE or server.task_state is not None:
            task = f", task_state {server.task_state}" if server.task_state else ""
            raise Conflict(f"Cannot 'attach_volume' instance {server.id} while it is in vm_state "
                           f"{VM_STATES.get(server.status, 'error')}{task}")
        self.refuse_elsewhere(server, volume)
        volume = self.volumes.reserve(volume.id, server.id, self.disk_names(server, requested), requested)
        if delete_on_termination:
            record = {"volume_id": volume.id, "device": volume.device, "delete_on_termination": True}
            self.compute.change(server.id, block_devices=(*server.block_devices, record))
        self.tasks.runner.submit(ConvergeVolumes(server.id))
        return volume

    def refuse_elsewhere(self, server: Server, volume: Volume) -> None:
        """400 unless the volume is on the server's hypervisor: its file is in that hypervisor's pool (Nova's
        answer when cross_az_attach is off and the zones differ, naming both hypervisors)."""
        here, there = self.placement.hosts.of(server), self.placement.host_of(volume.hypervisor)
        if here.name != there.name:
            raise BadRequest("volumeAttachment.volumeId",
                             f"Invalid volume: instance {server.id} and volume {volume.id} are not on the same "
                             f"hypervisor: the instance is on {here.name} (availability zone {here.zone}), the "
                             f"volume on {there.name} (availability zone {there.zone})")

    def detach(self, server: Server, volume_id: str) -> None:
        """Mark the volume detaching and queue the re-apply."""
        if server.task_state == DELETING:
            raise Conflict(f"Cannot 'detach_volume' instance {server.id} while it is being deleted")
        if volume_id == server.root_volume:
            raise BadRequest("volume_id", "Can't detach root device volume")
        self.volumes.start_detach(volume_id, server.id)
        self.tasks.runner.submit(ConvergeVolumes(server.id))

    def run(self, job: ConvergeVolumes) -> None:
        """Converge the server's domain with its volumes as they are now (a ProvisionError: `failed`).

        On success attaching volumes are in-use and detaching ones available.
        """
        server = self.compute.servers.get(job.server_id)
        current = self.volumes.attached_to(job.server_id)
        if server is None or server.task_state == DELETING:
            self.release(job.server_id)  # the delete detaches everything
            return
        # The system disk of a server booted from a volume is the spec's root_volume, not an attached disk.
        kept = [v for v in current if v.status != DETACHING and v.id != server.root_volume]
        spec = replace(self.spec(server), volumes=tuple(attachment(v.workspace, v.target or "") for v in kept))
        self.engine.provision(spec)
        for volume in current:
            if volume.status == ATTACHING:
                self.volumes.change(volume.id, status=IN_USE)
            elif volume.status == DETACHING:
                self.volumes.release(volume.id)
                # Detached: the server's delete no longer deletes it.
                kept_records = tuple(r for r in server.block_devices if r["volume_id"] != volume.id)
                server = self.compute.change(server.id, block_devices=kept_records) or server
        # The apply leaves the guest running (the plan says so), whatever it was before.
        self.compute.change(server.id, status=ACTIVE, fault=None)

    def failed(self, job: ConvergeVolumes, reason: str) -> None:
        """A failed attach leaves the volume available (as Nova does), a failed detach in-use: the reason on it."""
        for volume in self.volumes.attached_to(job.server_id):
            if volume.status == ATTACHING:
                self.volumes.release(volume.id, fault=f"attach failed: {reason}")
            elif volume.status == DETACHING:
                self.volumes.change(volume.id, status=IN_USE, fault=f"detach failed: {reason}")

    def dropped(self, job: ConvergeVolumes, reason: str) -> None:
        """As failed, and the server is ERROR: its domain may be half-applied."""
        self.failed(job, reason)
        self.tasks.lost(job, reason)

    def release(self, server_id: str) -> None:
        """The server is gone: its volumes are available again (they outlive it)."""
        for volume in self.volumes.attached_to(server_id):
            self.volumes.release(volume.id)


class VolumeAttachments:
    """GET and POST /compute/v2.1/servers/{id}/os-volume_attachments."""

    def __init__(self, config: ApiConfig, compute: ComputeStore, attachments: Attachments):
        self.config = config
        self.compute = compute
        self.attachments = attachments

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        server = self.compute.server(token_of(req), server_id)
        views = [attachment_view(v, version_of(req), server) for v in self.attachments.volumes.attached_to(server.id)]
        send(resp, {"volumeAttachments": views})

    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        token = token_of(req)
        body = read_json(req, self.config.max_json_body, "volumeAttachment")
        server = self.compute.server(token, server_id)
        volume_id = field(body, "volumeId", str, "volumeAttachment")
        requested = field(body, "device", str, "volumeAttachment", False)
        volume = self.attachments.volumes.volume(token, volume_id)
        # 2.79's delete_on_termination (api/openapi.yaml accepts it from there on).
        attached = self.attachments.attach(server, volume, requested, body.get("delete_on_termination") is True)
        server = self.compute.server(token, server_id)
        send(resp, {"volumeAttachment": attachment_view(attached, version_of(req), server)})


class VolumeAttachmentItem:
    """GET, PUT (swap: refused) and DELETE /compute/v2.1/servers/{id}/os-volume_attachments/{volume_id}."""

    def __init__(self, config: ApiConfig, compute: ComputeStore, attachments: Attachments):
        self.config = config
        self.compute = compute
        self.attachments = attachments

    def _attached(self, req: falcon.Request, server_id: str, volume_id: str) -> tuple[Server, Volume]:
        token = token_of(req)
        server = self.compute.server(token, server_id)
        volume = next((v for v in self.attachments.volumes.attached_to(server.id) if v.id == volume_id), None)
        if volume is None:
            raise NotFound(f"Volume {volume_id} is not attached to instance {server_id}.")
        return server, volume

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str, volume_id: str) -> None:
        server, volume = self._attached(req, server_id, volume_id)
        send(resp, {"volumeAttachment": attachment_view(volume, version_of(req), server)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str, volume_id: str) -> None:
        server, volume = self._attached(req, server_id, volume_id)
        self.attachments.detach(server, volume.id)
        resp.status = 202

    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str, volume_id: str) -> None:
        """Nova's swap of an attached volume for another (admin or service): refused with 409 once the
        request is found valid, as attachments here are re-applied with the domain's restart, never swapped
        under a running guest (a deployment's tempest.conf says swap_volume false)."""
        token = token_of(req)
        if not (token.is_admin or "service" in token.roles):
            raise Forbidden("Policy doesn't allow os_compute_api:os-volumes-attachments:swap to be performed.")
        read_json(req, self.config.max_json_body)  # volumeAttachment.volumeId (api/openapi.yaml)
        server, volume = self._attached(req, server_id, volume_id)
        raise Conflict(f"Cannot swap volume {volume.id} of instance {server.id}: swapping volumes is not supported")
