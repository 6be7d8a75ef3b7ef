"""Nova v2.1 JSON bodies."""

from __future__ import annotations

from typing import Any

from api.compute.models import ACTIVE, BUILD, ERROR, PAUSED, SHUTOFF, Keypair, Server
from api.config import Flavor
from api.http import isotime

VM_STATES = {ACTIVE: "active", BUILD: "building", SHUTOFF: "stopped", PAUSED: "paused", ERROR: "error"}
POWER_STATES = {ACTIVE: 1, PAUSED: 3, SHUTOFF: 4}


def link(base_url: str, kind: str, item_id: str) -> list[dict[str, str]]:
    """Nova's self/bookmark links."""
    return [{"rel": "self", "href": f"{base_url}/compute/v2.1/{kind}/{item_id}"},
            {"rel": "bookmark", "href": f"{base_url}/compute/{kind}/{item_id}"}]


def flavor_view(flavor: Flavor, base_url: str) -> dict[str, Any]:
    """A flavor (detail form)."""
    return {"id": flavor.id, "name": flavor.name, "ram": flavor.ram, "vcpus": flavor.vcpus, "disk": flavor.disk,
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral, "swap": "", "rxtx_factor": 1.0,
            "os-flavor-access:is_public": flavor.is_public, "OS-FLV-DISABLED:disabled": False,
            "links": link(base_url, "flavors", flavor.id)}


def keypair_view(keypair: Keypair, private_key: str | None = None) -> dict[str, Any]:
    """A keypair; the private key only in the answer that generated it."""
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint,
            "user_id": keypair.user_id, "type": keypair.type}
    if private_key is not None:
        body["private_key"] = private_key
    return body


def server_view(server: Server, base_url: str, network_names: dict[str, str],
                volume_ids: list[str]) -> dict[str, Any]:
    """A server (detail form), with the ids of the volumes attached to it."""
    addresses: dict[str, list[dict[str, Any]]] = {}
    for nic in server.nics():
        entries = addresses.setdefault(network_names.get(nic.network_id, nic.network_id), [])
        entries.extend({"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": nic.mac}
                       for ip in nic.ips)
    body: dict[str, Any] = {
        "id": server.id, "name": server.name, "status": server.status,
        "tenant_id": server.project_id, "user_id": server.user_id, "metadata": server.metadata,
        "created": isotime(server.created), "updated": isotime(server.updated),
        "flavor": {"id": server.flavor_id, "links": link(base_url, "flavors", server.flavor_id)},
        "image": {"id": server.image_id, "links": link(base_url, "images", server.image_id)},
        "addresses": addresses, "key_name": server.key_name, "hostId": "", "accessIPv4": "", "accessIPv6": "",
        "progress": 100 if server.status == ACTIVE else 0, "config_drive": "",
        "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": "nova",
        "OS-EXT-STS:vm_state": VM_STATES.get(server.status, "error"),
        "OS-EXT-STS:power_state": POWER_STATES.get(server.status, 0),
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-SRV-ATTR:instance_name": server.domain,
        "security_groups": [{"name": "default"}],
        "os-extended-volumes:volumes_attached": [{"id": volume_id} for volume_id in volume_ids],
        "links": link(base_url, "servers", server.id),
    }
    if server.fault:
        body["fault"] = {"code": 500, "message": server.fault, "created": isotime(server.updated)}
    return body
