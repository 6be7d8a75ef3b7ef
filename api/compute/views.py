"""Nova v2.1 JSON bodies."""

from __future__ import annotations

import zlib
from typing import Any

from api.compute.microversion import MIN
from api.compute.models import ACTIVE, BUILD, ERROR, PAUSED, SHUTOFF, Keypair, Server
from api.config import Flavor
from api.config_hypervisors import HOSTNAME
from api.http import isotime
from api.microversion import Version

HOST = HOSTNAME  # the compute host of os-services (and the one hypervisor of `libvirt_uri:`)
VM_STATES = {ACTIVE: "active", BUILD: "building", SHUTOFF: "stopped", PAUSED: "paused", ERROR: "error",
             # Nova's statuses of a resize and a rebuild (api/compute/resize.py, rebuild.py) and their vm_states.
             "RESIZE": "active", "VERIFY_RESIZE": "resized", "REVERT_RESIZE": "resized", "REBUILD": "active"}
POWER_STATES = {ACTIVE: 1, PAUSED: 3, SHUTOFF: 4, "RESIZE": 1, "VERIFY_RESIZE": 1, "REVERT_RESIZE": 1,
                "REBUILD": 1}


def link(base_url: str, kind: str, item_id: str) -> list[dict[str, str]]:
    """Nova's self/bookmark links."""
    return [{"rel": "self", "href": f"{base_url}/compute/v2.1/{kind}/{item_id}"},
            {"rel": "bookmark", "href": f"{base_url}/compute/{kind}/{item_id}"}]


def flavor_view(flavor: Flavor, base_url: str, version: Version = MIN, description: str | None = None,
                extra_specs: dict[str, str] | None = None) -> dict[str, Any]:
    """A flavor (detail form); its `description` from 2.55, its `extra_specs` from 2.61."""
    body: dict[str, Any] = {
        "id": flavor.id, "name": flavor.name, "ram": flavor.ram, "vcpus": flavor.vcpus, "disk": flavor.disk,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral, "swap": "", "rxtx_factor": 1.0,
        "os-flavor-access:is_public": flavor.is_public, "OS-FLV-DISABLED:disabled": False,
        "links": link(base_url, "flavors", flavor.id)}
    if version >= Version(2, 55):
        body["description"] = description
    if version >= Version(2, 61):
        body["extra_specs"] = extra_specs or {}
    return body


def keypair_view(keypair: Keypair, version: Version = MIN, private_key: str | None = None) -> dict[str, Any]:
    """A keypair as created (the private key only in the answer that generated it); `type` from 2.2."""
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint,
            "user_id": keypair.user_id}
    if version >= Version(2, 2):
        body["type"] = keypair.type
    if private_key is not None:
        body["private_key"] = private_key
    return body


def keypair_list_entry(keypair: Keypair, version: Version) -> dict[str, Any]:
    """A keypair in a list (no user_id there, as Nova)."""
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint}
    if version >= Version(2, 2):
        body["type"] = keypair.type
    return {"keypair": body}


def keypair_detail(keypair: Keypair, version: Version) -> dict[str, Any]:
    """A keypair as GET shows it: Nova's row fields too; `id` is an integer there (a database sequence), here
    a stable number derived from the keypair's key, as clients only display it."""
    return {**keypair_view(keypair, version), "id": zlib.crc32(keypair.id.encode()), "deleted": False,
            "created_at": isotime(keypair.created), "updated_at": None, "deleted_at": None}


def server_flavor(server: Server, base_url: str, flavors: list[Flavor], version: Version) -> dict[str, Any]:
    """The server's flavor: a reference before 2.47, then the flavor's values embedded (no id)."""
    if version < Version(2, 47):
        return {"id": server.flavor_id, "links": link(base_url, "flavors", server.flavor_id)}
    flavor = next((f for f in flavors if f.id == server.flavor_id), None)
    if flavor is None:  # removed from config.yaml since: Nova keeps a copy, we only know the id
        return {"original_name": server.flavor_id, "disk": 0, "ephemeral": 0, "ram": 0, "swap": 0, "vcpus": 0,
                "extra_specs": {}}
    return {"original_name": flavor.name, "disk": flavor.disk, "ephemeral": flavor.ephemeral, "ram": flavor.ram,
            "swap": 0, "vcpus": flavor.vcpus, "extra_specs": {}}


def _versioned_fields(server: Server, version: Version, single: bool, group_ids: list[str]) -> dict[str, Any]:
    """What later microversions add to a server: locked (2.9), description (2.19), tags (2.26),
    trusted_image_certificates (2.63), server_groups in a single server's view (2.71), locked_reason (2.73)."""
    added: dict[str, Any] = {}
    for since, name, value in ((9, "locked", server.locked), (19, "description", server.description), (26, "tags", list(server.tags)),
                               (63, "trusted_image_certificates", None), (73, "locked_reason", server.locked_reason)):
        if version >= Version(2, since):
            added[name] = value
    if single and version >= Version(2, 71):
        added["server_groups"] = group_ids
    return added


def server_view(server: Server, base_url: str, network_names: dict[str, str], volume_ids: list[str],
                version: Version = MIN, flavors: list[Flavor] | None = None, single: bool = True,
                group_ids: list[str] | None = None, admin: bool = False,
                floating: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A server (detail form) as `version` shows it, with the ids of the volumes attached to it; `single` for
    a GET of one server (some fields are not in lists, e.g. the ids of its server groups); the host fields
    for an admin only, as Nova's policy has it; `floating` maps a NIC's port id to its floating IPs."""
    addresses: dict[str, list[dict[str, Any]]] = {}
    for nic in server.nics():
        entries = addresses.setdefault(network_names.get(nic.network_id, nic.network_id), [])
        entries.extend({"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": nic.mac}
                       for ip in nic.ips)
        # A floating IP associated with this NIC's port (api/network/floating_ips.py), after its fixed ones.
        entries.extend({"addr": ip, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": nic.mac}
                       for ip in (floating or {}).get(nic.id, ()))
    body: dict[str, Any] = {
        "id": server.id, "name": server.name, "status": server.status,
        "tenant_id": server.project_id, "user_id": server.user_id, "metadata": server.metadata,
        "created": isotime(server.created), "updated": isotime(server.updated),
        "flavor": server_flavor(server, base_url, flavors or [], version),
        # Nova's image of a server booted from a volume is "".
        "image": {"id": server.image_id, "links": link(base_url, "images", server.image_id)} if server.image_id
        else "",
        "addresses": addresses, "key_name": server.key_name, "hostId": "", "accessIPv4": server.access_ipv4,
        "accessIPv6": server.access_ipv6,
        "config_drive": "",
        "OS-DCF:diskConfig": server.disk_config, "OS-EXT-AZ:availability_zone": server.availability_zone,
        "OS-EXT-STS:vm_state": VM_STATES.get(server.status, "error"),
        "OS-EXT-STS:power_state": POWER_STATES.get(server.status, 0),
        "OS-EXT-STS:task_state": server.task_state,
        "os-extended-volumes:volumes_attached": [{"id": volume_id} for volume_id in volume_ids],
        "links": link(base_url, "servers", server.id),
        **_versioned_fields(server, version, single, group_ids or []),
    }
    if body["OS-EXT-STS:vm_state"] in ("active", "building"):  # Nova shows progress in these vm_states only
        body["progress"] = 100 if server.status == ACTIVE else 0
    if server.security_groups:  # Nova leaves the key out when the server is in no group
        body["security_groups"] = [{"name": name} for name in server.security_groups]
    if admin:
        # The hypervisor it was placed on (none: No valid host; a record from before placement: this host).
        host = None if server.hypervisor == "" else server.hypervisor or HOST
        body.update({"OS-EXT-SRV-ATTR:host": host, "OS-EXT-SRV-ATTR:hypervisor_hostname": host,
                     "OS-EXT-SRV-ATTR:instance_name": server.domain})
    if server.fault:
        body["fault"] = {"code": 500, "message": server.fault, "created": isotime(server.updated)}
    return body


# What PUT /servers/{id} answers: the server without the detail-only extension fields (Nova's update view).
_DETAIL_ONLY = ("key_name", "security_groups", "OS-EXT-AZ:availability_zone", "OS-EXT-STS:vm_state",
                "OS-EXT-STS:power_state", "OS-EXT-STS:task_state", "OS-EXT-SRV-ATTR:instance_name",
                "os-extended-volumes:volumes_attached", "config_drive")


def update_view(detail: dict[str, Any], version: Version) -> dict[str, Any]:
    """The update answer from a server's detail view: before 2.75, without the fields only the detail view
    has, and addresses without their OS-EXT-IPS extension keys; from 2.75 the same as GET."""
    if version >= Version(2, 75):
        return detail
    body = {k: v for k, v in detail.items() if k not in _DETAIL_ONLY}
    body["addresses"] = {name: [{"addr": a["addr"], "version": a["version"]} for a in entries]
                         for name, entries in detail["addresses"].items()}
    return body
