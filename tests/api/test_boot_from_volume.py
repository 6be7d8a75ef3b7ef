"""Boot from volume (issue #12): a server whose system disk is a Cinder volume, from block_device_mapping_v2
or the legacy block_device_mapping. Servers and volumes are applied on the simulated hypervisor through the
real engine; the domain's disks are read back from the simulated libvirt."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, names_field, poll, qcow2_file  # noqa: F401 (fixtures)

from provisioner.layout import POOL_NAME
from provisioner.provider.simulator import open_readonly, transaction

V279 = {"OpenStack-API-Version": "compute 2.79"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _active(live: Live, server_id: str) -> dict[str, Any]:
    server = poll(live, f"/compute/v2.1/servers/{server_id}", "server",
                   lambda s: s is not None and s["status"] in ("ACTIVE", "ERROR"))
    assert server["status"] == "ACTIVE", server.get("fault")
    return server


def _disks(live: Live, domain: str) -> dict[str, str]:
    """target dev -> source volume of the domain's disks, read from libvirt."""
    conn = open_readonly(live.layout.simulator_uri)
    try:
        root = ET.fromstring(conn.lookupByName(domain).XMLDesc(0))
    finally:
        conn.close()
    return {d.find("target").get("dev"): d.find("source").get("volume") for d in root.iter("disk")
            if d.get("device") == "disk"}


@pytest.fixture(scope="module")
def image_id(live: Live, qcow2_file: Path) -> str:  # noqa: F811
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                    "bfv-image", "-f", "json")["id"]


def _bootable_volume(live: Live, image_id: str) -> dict[str, Any]:
    created = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "imageRef": image_id}})
    assert created.status_code == 202, created.text
    return poll(live, f"/volume/v3/volumes/{created.json()['volume']['id']}", "volume",
                 lambda v: v["status"] == "available")


def _create(live: Live, **server: Any) -> requests.Response:
    return _call(live, "POST", "/compute/v2.1/servers",
                 {"server": {"name": "bfv", "flavorRef": "1", "networks": "none", **server}})


def test_boot_from_an_existing_volume(live: Live, image_id: str) -> None:
    volume = _bootable_volume(live, image_id)
    created = _create(live, imageRef="", block_device_mapping_v2=[{
        "uuid": volume["id"], "source_type": "volume", "destination_type": "volume", "boot_index": 0,
        "delete_on_termination": True}])
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    assert server["image"] == "", "Nova's image of a server booted from a volume"
    assert server["os-extended-volumes:volumes_attached"] == [{"id": volume["id"]}]
    assert _disks(live, f"srv-{server['id']}") == {"vda": f"vol-{volume['id']}.qcow2"}, "the volume is vda"
    shown = _call(live, "GET", f"/volume/v3/volumes/{volume['id']}").json()["volume"]
    assert shown["status"] == "in-use"
    assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [(server["id"], "/dev/vda")]
    attachments = _call(live, "GET", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                        headers=V279).json()["volumeAttachments"]
    assert [(a["volumeId"], a["device"], a["delete_on_termination"]) for a in attachments] == [
        (volume["id"], "/dev/vda", True)]
    refused = _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments/{volume['id']}")
    assert refused.status_code == 400 and "root device" in refused.json()["badRequest"]["message"]
    taken = _create(live, block_device_mapping_v2=[{"uuid": volume["id"], "source_type": "volume",
                                                    "destination_type": "volume", "boot_index": 0}])
    assert taken.status_code == 400 and "status must be available" in taken.json()["badRequest"]["message"]

    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}").status_code == 204
    poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v is None)  # delete_on_termination


def test_boot_from_an_image_made_volume_kept_after_delete(live: Live, image_id: str,
                                                          qcow2_file: Path) -> None:  # noqa: F811
    created = _create(live, block_device_mapping_v2=[{
        "uuid": image_id, "source_type": "image", "destination_type": "volume", "boot_index": "0",
        "volume_size": 2, "delete_on_termination": False}])
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    (attached,) = server["os-extended-volumes:volumes_attached"]
    volume = _call(live, "GET", f"/volume/v3/volumes/{attached['id']}").json()["volume"]
    assert volume["size"] == 2 and volume["bootable"] == "true" and volume["status"] == "in-use"
    assert volume["volume_image_metadata"]["image_id"] == image_id
    assert _disks(live, f"srv-{server['id']}")["vda"] == f"vol-{volume['id']}.qcow2"
    other = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "bfv-other",
                     "-f", "json")
    live.osc("alice", "image", "delete", other["id"])  # the store tells which images are used: none by this server
    assert "bfv-other" not in live.osc("alice", "image", "list", "-f", "value", "-c", "Name")
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}").status_code == 204
    poll(live, f"/compute/v2.1/servers/{server['id']}", "server", lambda s: s is None)
    kept = poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v["status"] == "available")
    assert kept["attachments"] == [], "delete_on_termination false: the volume outlives the server, detached"


def test_legacy_mapping_and_a_second_volume(live: Live, image_id: str) -> None:
    root, data = _bootable_volume(live, image_id), _bootable_volume(live, image_id)
    created = _create(live, block_device_mapping=[
        {"device_name": "vda", "volume_id": root["id"], "delete_on_termination": "false"},
        {"device_name": "vdb", "volume_id": data["id"]}])
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    assert _disks(live, f"srv-{server['id']}") == {"vda": f"vol-{root['id']}.qcow2", "vdb": f"vol-{data['id']}.qcow2"}
    assert sorted(v["id"] for v in server["os-extended-volumes:volumes_attached"]) == sorted([root["id"], data["id"]])
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}").status_code == 204
    for volume in (root, data):
        poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v["status"] == "available")


@pytest.mark.parametrize(("mapping", "field", "reason"), [
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "volume", "uuid": "x", "destination_type": "invalid"}],
     "server.block_device_mapping_v2[1].destination_type", "'invalid': use one of local, volume"),
    ([{"source_type": "disk", "uuid": "x", "boot_index": 0}],
     "server.block_device_mapping_v2[0].source_type", "'disk': use one of volume, image, snapshot, blank"),
    ([{"source_type": "volume", "destination_type": "volume", "boot_index": 0}],
     "server.block_device_mapping_v2[0].uuid", "needs the volume's id"),
    ([{"source_type": "volume", "uuid": "no-such-volume", "destination_type": "volume", "boot_index": 0}],
     "server.block_device_mapping_v2[0].uuid", "failed to get volume 'no-such-volume'"),
    ([{"source_type": "image", "uuid": "no-such-image", "destination_type": "volume", "boot_index": 0}],
     "server.block_device_mapping_v2[0].uuid", "failed to get image 'no-such-image'"),
    ([{"source_type": "snapshot", "uuid": "no-such", "destination_type": "volume", "boot_index": 0}],
     "server.block_device_mapping_v2[0].uuid", "failed to get snapshot 'no-such'"),
    ([{"source_type": "blank", "destination_type": "volume", "boot_index": 0}],
     "server.block_device_mapping_v2[0].volume_size", "a blank volume needs a volume_size"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "volume", "boot_index": 1}],
     "server.block_device_mapping_v2", "Boot sequence"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "volume", "boot_index": "x"}],
     "server.block_device_mapping_v2[0].boot_index", "does not match"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "volume", "boot_index": 0,
       "delete_on_termination": "maybe"}],
     "server.block_device_mapping_v2[0].delete_on_termination", "'maybe': use one of"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "snapshot", "uuid": "x", "destination_type": "local"}],
     "server.block_device_mapping_v2[1].destination_type", "a blank ephemeral or swap disk"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "blank", "destination_type": "local", "volume_size": 1}],
     "server.block_device_mapping_v2[1]", "Ephemeral disks requested are larger than the instance type allows."),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "blank", "destination_type": "local"}],
     "server.block_device_mapping_v2[1].volume_size", "an ephemeral disk needs a size"),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 1}],
     "server.block_device_mapping_v2[1].volume_size", "Swap drive requested is larger than instance type allows."),
    ([{"source_type": "image", "uuid": "IMAGE", "destination_type": "local", "boot_index": 0},
      {"source_type": "blank", "destination_type": "local", "guest_format": "swap"},
      {"source_type": "blank", "destination_type": "local", "guest_format": "swap"}],
     "server.block_device_mapping_v2[2]", "More than one swap drive requested."),
    ([{"source_type": "blank", "destination_type": "local", "volume_size": 1, "boot_index": 0}],
     "server.block_device_mapping_v2[0].destination_type", "a blank ephemeral or swap disk"),
    ([], "server.imageRef", "is required unless a block device mapping boots the server"),
])
def test_bad_mappings_are_refused(live: Live, image_id: str, mapping: list[dict[str, Any]], field: str,
                                  reason: str) -> None:
    mapping = [{k: image_id if v == "IMAGE" else v for k, v in m.items()} for m in mapping]
    resp = _create(live, block_device_mapping_v2=mapping)
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert names_field(message, field) and reason in message, message


def test_one_volume_is_not_for_several_servers(live: Live, image_id: str) -> None:
    volume = _bootable_volume(live, image_id)
    resp = _create(live, max_count=2, block_device_mapping_v2=[{
        "uuid": volume["id"], "source_type": "volume", "destination_type": "volume", "boot_index": 0}])
    assert resp.status_code == 400 and "multiple instances" in resp.json()["badRequest"]["message"]
    blank = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1}}).json()["volume"]
    poll(live, f"/volume/v3/volumes/{blank['id']}", "volume", lambda v: v["status"] == "available")
    resp = _create(live, block_device_mapping_v2=[{
        "uuid": blank["id"], "source_type": "volume", "destination_type": "volume", "boot_index": 0}])
    assert resp.status_code == 400 and "is not bootable" in resp.json()["badRequest"]["message"]


def test_attached_with_delete_on_termination(live: Live, image_id: str) -> None:
    """2.79: an attach may say delete_on_termination; a volume detached before the delete is kept."""
    created = _create(live, imageRef=image_id)
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    volumes = []
    for _ in range(2):
        blank = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1}}).json()["volume"]
        volumes.append(poll(live, f"/volume/v3/volumes/{blank['id']}", "volume", lambda v: v["status"] == "available"))
    path = f"/compute/v2.1/servers/{server['id']}/os-volume_attachments"
    early = _call(live, "POST", path, {"volumeAttachment": {"volumeId": volumes[0]["id"], "delete_on_termination": True}})
    assert early.status_code == 400 and "2.79" in early.json()["badRequest"]["message"]
    for volume in volumes:
        attached = _call(live, "POST", path, {"volumeAttachment": {"volumeId": volume["id"],
                                                                   "delete_on_termination": True}}, headers=V279)
        assert attached.status_code == 200 and attached.json()["volumeAttachment"]["delete_on_termination"] is True
        poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v["status"] == "in-use")
    assert _call(live, "DELETE", f"{path}/{volumes[1]['id']}").status_code == 202
    poll(live, f"/volume/v3/volumes/{volumes[1]['id']}", "volume", lambda v: v["status"] == "available")
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}").status_code == 204
    poll(live, f"/volume/v3/volumes/{volumes[0]['id']}", "volume", lambda v: v is None)
    poll(live, f"/compute/v2.1/servers/{server['id']}", "server", lambda s: s is None)
    kept = _call(live, "GET", f"/volume/v3/volumes/{volumes[1]['id']}").json()["volume"]
    assert kept["status"] == "available", "detached before the delete: kept"


def test_create_image_of_a_volume_backed_server_and_boot_it(live: Live, image_id: str) -> None:
    """Nova's createImage of a volume-backed server: a Cinder snapshot of its root volume named by a data-less
    image (block_device_mapping, bdm_v2, root_device_name); booting that image makes a volume of the snapshot."""
    created = _create(live, block_device_mapping_v2=[{
        "uuid": image_id, "source_type": "image", "destination_type": "volume", "boot_index": 0,
        "volume_size": 1, "delete_on_termination": True}])
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    (root,) = server["os-extended-volumes:volumes_attached"]
    taken = _call(live, "POST", f"/compute/v2.1/servers/{server['id']}/action",
                  {"createImage": {"name": "bfv-snap", "metadata": {"purpose": "test"}}},
                  headers={"OpenStack-API-Version": "compute 2.45"})
    assert taken.status_code == 202, taken.text
    snap_image_id = taken.json()["image_id"]
    assert taken.headers["Location"].endswith(f"/image/v2/images/{snap_image_id}")
    image = _call(live, "GET", f"/image/v2/images/{snap_image_id}").json()
    assert (image["status"], image["name"], image["purpose"], image["bdm_v2"]) == ("active", "bfv-snap", "test", "True")
    assert image["root_device_name"] == "/dev/vda"
    (mapping,) = json.loads(image["block_device_mapping"])
    assert {k: mapping[k] for k in ("source_type", "destination_type", "boot_index", "volume_size", "device_name",
                                    "delete_on_termination")} == {
        "source_type": "snapshot", "destination_type": "volume", "boot_index": 0, "volume_size": 1,
        "device_name": "/dev/vda", "delete_on_termination": True}
    snapshot = poll(live, f"/volume/v3/snapshots/{mapping['snapshot_id']}", "snapshot",
                     lambda s: s["status"] == "available")
    assert (snapshot["volume_id"], snapshot["name"]) == (root["id"], "snapshot for bfv-snap")

    booted = _create(live, imageRef=snap_image_id)
    assert booted.status_code == 202, booted.text
    second = _active(live, booted.json()["server"]["id"])
    (volume_ref,) = second["os-extended-volumes:volumes_attached"]
    volume = _call(live, "GET", f"/volume/v3/volumes/{volume_ref['id']}").json()["volume"]
    assert (volume["snapshot_id"], volume["size"], volume["status"]) == (snapshot["id"], 1, "in-use")
    assert _disks(live, f"srv-{second['id']}") == {"vda": f"vol-{volume['id']}.qcow2"}, "the new volume is vda"
    for doomed in (second, server):
        assert _call(live, "DELETE", f"/compute/v2.1/servers/{doomed['id']}").status_code == 204
    # The image's delete_on_termination went with the mapping: the second server's volume goes with it.
    poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v is None)


def test_an_image_with_a_bad_block_device_mapping_is_refused(live: Live, qcow2_file: Path) -> None:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "--property", "bdm_v2=True", "--property", "block_device_mapping=[{\"source_type\": \"disk\"}]",
                     "bad-bdm", "-f", "json")
    resp = _create(live, imageRef=image["id"])
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert message.startswith(f"image {image['id']} block_device_mapping[0].source_type: "), message


def test_volumes_made_for_a_failed_build_go_with_the_server(live: Live) -> None:
    """A build that fails before it reserves its new volumes (the first could not be made): the server's
    delete deletes those mapped with delete_on_termination, reserved or not (Nova's _cleanup_volumes), and
    keeps the others, available. Bob's: alice's volumes quota is spent by the tests before."""
    source = _call(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1}}, "bob").json()["volume"]
    poll(live, f"/volume/v3/volumes/{source['id']}", "volume", lambda v: v["status"] == "available", "bob")
    snap = _call(live, "POST", "/volume/v3/snapshots", {"snapshot": {"volume_id": source["id"]}},
                 "bob").json()["snapshot"]
    poll(live, f"/volume/v3/snapshots/{snap['id']}", "snapshot", lambda s: s["status"] == "available", "bob")
    # Removed behind the engine's back: a volume made of this snapshot has nothing to copy and fails.
    with transaction(live.layout.simulator_uri) as session:
        session.conn.storagePoolLookupByName(POOL_NAME).storageVolLookupByName(f"snap-{snap['id']}.qcow2").delete(0)
    before = {v["id"] for v in _call(live, "GET", "/volume/v3/volumes", user="bob").json()["volumes"]}
    created = _call(live, "POST", "/compute/v2.1/servers", user="bob", body={"server": {
        "name": "bfv-failed", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [
        {"uuid": snap["id"], "source_type": "snapshot", "destination_type": "volume", "boot_index": 0,
         "delete_on_termination": True},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 1,
         "delete_on_termination": True},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 2, "boot_index": 2}]}})
    assert created.status_code == 202, created.text
    server = poll(live, f"/compute/v2.1/servers/{created.json()['server']['id']}", "server",
                   lambda s: s is not None and s["status"] in ("ACTIVE", "ERROR"), "bob")
    assert server["status"] == "ERROR" and "did not finish being created" in server["fault"]["message"]
    listed = _call(live, "GET", "/volume/v3/volumes/detail", user="bob").json()["volumes"]
    new = [v for v in listed if v["id"] not in before]
    # Told apart by source and size: the snapshot's, the blank 1 GiB (delete_on_termination), the blank 2 GiB.
    failed, made, kept = sorted(new, key=lambda v: (v["snapshot_id"] is None, v["size"]))
    assert (failed["snapshot_id"], made["size"], kept["size"]) == (snap["id"], 1, 2)
    for volume in (made, kept):  # made, never reserved: the build stopped at the first
        done = poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v["status"] != "creating",
                     "bob")
        assert (done["status"], done["attachments"]) == ("available", [])
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}", user="bob").status_code == 204
    poll(live, f"/compute/v2.1/servers/{server['id']}", "server", lambda s: s is None, "bob")
    for volume in (failed, made):
        poll(live, f"/volume/v3/volumes/{volume['id']}", "volume", lambda v: v is None, "bob")
    left = _call(live, "GET", f"/volume/v3/volumes/{kept['id']}", user="bob").json()["volume"]
    assert left["status"] == "available", "no delete_on_termination: the user's, as in Nova"


def test_ephemeral_disks_within_the_flavor(live: Live, image_id: str) -> None:
    """Blank local mappings are ephemeral disks of the domain's own (blank qcow2, after vda), up to the
    flavor's ephemeral GiB (a size not given is the flavor's); volumes come after them."""
    flavor = _call(live, "POST", "/compute/v2.1/flavors", user="admin", body={"flavor": {
        "name": "eph2", "ram": 512, "vcpus": 1, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 2}})
    assert flavor.status_code == 200, flavor.text
    flavor_id = flavor.json()["flavor"]["id"]
    too_big = _create(live, imageRef=image_id, flavorRef=flavor_id, block_device_mapping_v2=[
        {"source_type": "blank", "destination_type": "local", "volume_size": 1},
        {"source_type": "blank", "destination_type": "local"}])
    assert too_big.status_code == 400 and "larger than the instance type" in too_big.text, "1 + the flavor's 2"
    created = _create(live, imageRef=image_id, flavorRef=flavor_id, block_device_mapping_v2=[
        {"uuid": image_id, "source_type": "image", "destination_type": "local", "boot_index": 0},
        {"source_type": "blank", "destination_type": "local", "volume_size": 1},
        {"source_type": "blank", "destination_type": "local", "volume_size": 1, "guest_format": "ext4"},
        {"source_type": "blank", "destination_type": "local", "guest_format": "swap"},  # no size: no swap disk
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": True}])
    assert created.status_code == 202, created.text
    server = _active(live, created.json()["server"]["id"])
    domain = f"srv-{server['id']}"
    (attached,) = server["os-extended-volumes:volumes_attached"]
    disks = _disks(live, domain)
    assert (disks["vdb"], disks["vdc"], disks["vdd"]) == (f"{domain}-data1.qcow2", f"{domain}-data2.qcow2",
                                                          f"vol-{attached['id']}.qcow2")
    conn = open_readonly(live.layout.simulator_uri)
    try:
        pool = conn.storagePoolLookupByName(POOL_NAME)
        assert [pool.storageVolLookupByName(f"{domain}-data{i}.qcow2").info()[1] for i in (1, 2)] == [1 << 30] * 2
    finally:
        conn.close()
    assert _call(live, "DELETE", f"/compute/v2.1/servers/{server['id']}").status_code == 204
    poll(live, f"/compute/v2.1/servers/{server['id']}", "server", lambda s: s is None)
