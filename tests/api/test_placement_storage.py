"""Volumes and networks with several hypervisors (issue #14): a volume is made on a hypervisor of its availability
zone (the one with the most free disk) and stays there, servers using it go there, an attach across hypervisors is
refused, and a network created through the API is applied on each hypervisor a server with a port on it is built
on, and removed from one when its last server there is gone.

The hypervisors are libvirt test-driver node files of their own (`simulator:NAME`): what each holds is read back
from its own node file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from provisioner.provider.simulator import open_readonly
from provisioner.volumes import volume_name

from apitest import Live, poll, qcow2_file, serve_root  # noqa: F401 (fixtures)

# one and three share zone nova (three has the most disk); two is zone east's only hypervisor.
CONFIG = """hypervisors:
- {name: one, uri: "simulator:one", memory_mb: 8192, cpus: 8, disk_gb: 100}
- {name: two, uri: "simulator:two", zone: east, memory_mb: 8192, cpus: 8, disk_gb: 100}
- {name: three, uri: "simulator:three", memory_mb: 4096, cpus: 8, disk_gb: 300}
quotas:
  volume: {volumes: -1, gigabytes: -1, snapshots: -1}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_root(tmp_path_factory.mktemp("api") / "root", CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def image(live: Live, qcow2_file: Path) -> str:  # noqa: F811
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "cirros",
                    "-f", "json")["id"]


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user)})


def _volume(live: Live, body: dict[str, Any]) -> dict[str, Any]:
    """Create a volume, wait until it is available; its admin view."""
    resp = _call(live, "POST", "/volume/v3/volumes", {"volume": body})
    assert resp.status_code == 202, resp.text
    volume = poll(live, f"/volume/v3/volumes/{resp.json()['volume']['id']}", "volume",
                   lambda v: v is not None and v["status"] not in ("creating",), user="admin")
    assert volume["status"] == "available", volume
    return volume


def _server(live: Live, body: dict[str, Any]) -> dict[str, Any]:
    """Create a server, wait until it is ACTIVE or ERROR; its admin view."""
    resp = _call(live, "POST", "/compute/v2.1/servers", {"server": {"flavorRef": "1", "networks": "none", **body}})
    assert resp.status_code == 202, resp.text
    return poll(live, f"/compute/v2.1/servers/{resp.json()['server']['id']}", "server",
                 lambda s: s is not None and s["status"] in ("ACTIVE", "ERROR"), user="admin")


def _delete_server(live: Live, server_id: str) -> None:
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server_id}").status_code == 204
    poll(live, f"/compute/v2.1/servers/{server_id}", "server", lambda s: s is None)


def _pool_volumes(live: Live, hypervisor: str) -> set[str]:
    conn = open_readonly(live.layout.named_simulator_uri(hypervisor))
    try:
        return {v.name() for p in conn.listAllStoragePools() for v in p.listAllVolumes()}
    finally:
        conn.close()


def _networks(live: Live, hypervisor: str) -> set[str]:
    conn = open_readonly(live.layout.named_simulator_uri(hypervisor))
    try:
        return {n.name() for n in conn.listAllNetworks()}
    finally:
        conn.close()


def _disks(live: Live, hypervisor: str, domain: str) -> set[str]:
    """The source volumes of the domain's disks on `hypervisor`."""
    conn = open_readonly(live.layout.named_simulator_uri(hypervisor))
    try:
        root = ET.fromstring(conn.lookupByName(domain).XMLDesc(0))
    finally:
        conn.close()
    return {d.find("source").get("volume") for d in root.iter("disk") if d.get("device") == "disk"}


def test_a_volume_is_made_in_its_zone_on_the_hypervisor_with_the_most_free_disk(live: Live) -> None:
    east = _volume(live, {"size": 1, "name": "east", "availability_zone": "east"})
    assert (east["availability_zone"], east["os-vol-host-attr:host"]) == ("east", "two@libvirt#provisioner")
    file = volume_name(f"vol-{east['id']}")
    assert file in _pool_volumes(live, "two")
    assert file not in _pool_volumes(live, "one") | _pool_volumes(live, "three")
    assert (live.layout.root / "volumes" / f"vol-{east['id']}" / "terraform" / "main.tf").read_text().count(
        live.layout.named_simulator_uri("two")) == 1, "its workspace targets two's URI"
    anywhere = _volume(live, {"size": 1, "name": "anywhere"})
    assert (anywhere["availability_zone"], anywhere["os-vol-host-attr:host"]) == (
        "nova", "three@libvirt#provisioner"), "zone nova: three has 300 GiB, one 100"
    assert volume_name(f"vol-{anywhere['id']}") in _pool_volumes(live, "three")
    alice = _call(live, "GET", f"/volume/v3/volumes/{east['id']}").json()["volume"]
    assert alice["availability_zone"] == "east" and "os-vol-host-attr:host" not in alice
    listed = _call(live, "GET", "/volume/v3/volumes/detail?availability_zone=east").json()["volumes"]
    assert [v["id"] for v in listed] == [east["id"]]
    zones = _call(live, "GET", "/volume/v3/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}},
                     {"zoneName": "east", "zoneState": {"available": True}}]


def test_an_unknown_zone_is_refused_naming_the_field(live: Live) -> None:
    resp = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "availability_zone": "mars"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "volume.availability_zone: Invalid input received: Availability zone 'mars' is invalid.")
    assert _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "availability_zone": ""}}
                 ).status_code == 400


def test_a_zone_without_room_leaves_the_volume_in_error_saying_why(live: Live) -> None:
    resp = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 150, "availability_zone": "east"}})
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    volume = _call(live, "GET", f"/volume/v3/volumes/{volume_id}", user="admin").json()["volume"]
    assert (volume["status"], volume["os-vol-host-attr:host"]) == ("error", None), "scheduled nowhere"
    messages = requests.get(f"{live.url}/volume/v3/messages", timeout=60, headers={
        "X-Auth-Token": live.token("alice"), "OpenStack-API-Version": "volume 3.3"}).json()["messages"]
    message = next(m["user_message"] for m in messages if m["resource_uuid"] == volume_id)
    assert "No valid backend was found. No hypervisor of availability zone east holds a 150 GiB volume" in message
    assert "two: " in message and "GiB disk free" in message
    assert not any(volume_id in name for name in _pool_volumes(live, "two")), "nothing was made"
    assert _call(live, "DELETE", f"/volume/v3/volumes/{volume_id}").status_code == 202


def test_snapshots_and_copies_stay_on_the_sources_hypervisor(live: Live) -> None:
    source = _volume(live, {"size": 1, "name": "source", "availability_zone": "east"})
    resp = _call(live, "POST", "/volume/v3/snapshots", {"snapshot": {"volume_id": source["id"], "name": "s"}})
    assert resp.status_code == 202, resp.text
    snapshot = poll(live, f"/volume/v3/snapshots/{resp.json()['snapshot']['id']}", "snapshot",
                     lambda s: s is not None and s["status"] != "creating")
    assert snapshot["status"] == "available"
    assert volume_name(f"snap-{snapshot['id']}") in _pool_volumes(live, "two")
    from_snapshot = _volume(live, {"snapshot_id": snapshot["id"], "name": "from-snapshot"})
    from_volume = _volume(live, {"source_volid": source["id"], "name": "from-volume"})
    for copy in (from_snapshot, from_volume):
        assert (copy["availability_zone"], copy["os-vol-host-attr:host"]) == ("east", "two@libvirt#provisioner")
        assert volume_name(f"vol-{copy['id']}") in _pool_volumes(live, "two")
    elsewhere = _call(live, "POST", "/volume/v3/volumes", {"volume": {
        "snapshot_id": snapshot["id"], "availability_zone": "nova"}})
    assert elsewhere.status_code == 400
    assert "volume.availability_zone" in elsewhere.json()["badRequest"]["message"]
    assert "same availability zone as the snapshot" in elsewhere.json()["badRequest"]["message"]


def test_an_attach_across_hypervisors_is_refused_and_one_on_the_same_is_made(live: Live, image: str) -> None:
    server = _server(live, {"name": "east-server", "imageRef": image, "availability_zone": "east"})
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "two"), server.get("fault")
    away = _volume(live, {"size": 1, "name": "away", "availability_zone": "nova"})
    resp = _call(live, "POST", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                 {"volumeAttachment": {"volumeId": away["id"]}})
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert message.startswith("volumeAttachment.volumeId: Invalid volume:")
    assert "the instance is on two" in message and "the volume on three" in message
    assert _call(live, "GET", f"/volume/v3/volumes/{away['id']}").json()["volume"]["status"] == "available"
    near = _volume(live, {"size": 1, "name": "near", "availability_zone": "east"})
    resp = _call(live, "POST", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                 {"volumeAttachment": {"volumeId": near["id"]}})
    assert resp.status_code == 200, resp.text
    poll(live, f"/volume/v3/volumes/{near['id']}", "volume", lambda v: v["status"] == "in-use")
    assert volume_name(f"vol-{near['id']}") in _disks(live, "two", f"srv-{server['id']}")
    _delete_server(live, server["id"])


def test_boot_from_volume_goes_to_the_volumes_hypervisor(live: Live, image: str) -> None:
    boot = _volume(live, {"size": 1, "name": "boot", "imageRef": image, "availability_zone": "east"})
    assert boot["bootable"] == "true"
    mapping = [{"boot_index": 0, "uuid": boot["id"], "source_type": "volume", "destination_type": "volume"}]
    server = _server(live, {"name": "bfv", "block_device_mapping_v2": mapping})
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (
        "ACTIVE", "two", "east"), server.get("fault")
    assert volume_name(f"vol-{boot['id']}") in _disks(live, "two", f"srv-{server['id']}")
    # Asked for another zone: no hypervisor there has the volume (Nova's No valid host, naming why).
    other = _volume(live, {"size": 1, "name": "boot2", "imageRef": image, "availability_zone": "east"})
    mapping = [{"boot_index": 0, "uuid": other["id"], "source_type": "volume", "destination_type": "volume"}]
    refused = _server(live, {"name": "bfv-nova", "block_device_mapping_v2": mapping, "availability_zone": "nova"})
    assert refused["status"] == "ERROR" and "one: the server's volumes are on two" in refused["fault"]["message"]
    # Volumes on two hypervisors cannot be one server's.
    far = _volume(live, {"size": 1, "name": "far", "availability_zone": "nova"})
    resp = _call(live, "POST", "/compute/v2.1/servers", {"server": {
        "name": "split", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [
            {"boot_index": 0, "uuid": other["id"], "source_type": "volume", "destination_type": "volume"},
            {"boot_index": 1, "uuid": far["id"], "source_type": "volume", "destination_type": "volume"}]}})
    assert resp.status_code == 400
    assert "block_device_mapping_v2[1].uuid" in resp.json()["badRequest"]["message"]
    assert "must be on one hypervisor" in resp.json()["badRequest"]["message"]
    # A volume the mapping makes (from the image) is made on the server's hypervisor.
    made = _server(live, {"name": "bfv-new", "availability_zone": "nova", "block_device_mapping_v2": [
        {"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume", "volume_size": 1,
         "delete_on_termination": True}]})
    assert made["status"] == "ACTIVE", made.get("fault")
    host = made["OS-EXT-SRV-ATTR:host"]
    volume_id = made["os-extended-volumes:volumes_attached"][0]["id"]
    volume = _call(live, "GET", f"/volume/v3/volumes/{volume_id}", user="admin").json()["volume"]
    assert volume["os-vol-host-attr:host"] == f"{host}@libvirt#provisioner"
    for finished in (server, made, refused):
        _delete_server(live, finished["id"])


def test_a_network_is_on_each_hypervisor_its_servers_are_on_until_the_last_leaves(live: Live, image: str) -> None:
    network = live.osc("alice", "network", "create", "spread", "-f", "json")
    libvirt_name = f"net-{network['id']}"
    # With a subnet the NIC has its fixed IP: nobody asks the test driver for the guest's addresses.
    live.osc("alice", "subnet", "create", "--network", "spread", "--subnet-range", "10.19.0.0/24", "spread-v4")
    assert libvirt_name in _networks(live, "one"), "made on the first hypervisor at its creation"
    assert libvirt_name not in _networks(live, "two")
    nic = [{"uuid": network["id"]}]
    servers = [_server(live, {"name": f"net-east{i}", "imageRef": image, "networks": nic, "availability_zone": "east"})
               for i in range(2)]
    for server in servers:
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "two"), server.get("fault")
    assert libvirt_name in _networks(live, "two") and libvirt_name in _networks(live, "one")
    workspace = live.layout.root / "networks" / f"{libvirt_name}@two"
    assert (workspace / "terraform" / "main.tf").read_text().count(live.layout.named_simulator_uri("two")) == 1
    _delete_server(live, servers[0]["id"])
    assert libvirt_name in _networks(live, "two"), "another server there still has a port on it"
    _delete_server(live, servers[1]["id"])
    assert libvirt_name not in _networks(live, "two") and not workspace.exists()
    assert libvirt_name in _networks(live, "one")
    again = _server(live, {"name": "net-east-again", "imageRef": image, "networks": nic, "availability_zone": "east"})
    assert again["status"] == "ACTIVE" and libvirt_name in _networks(live, "two"), again.get("fault")
    _delete_server(live, again["id"])
    live.osc("alice", "network", "delete", "spread")
    assert libvirt_name not in _networks(live, "one") | _networks(live, "two")
