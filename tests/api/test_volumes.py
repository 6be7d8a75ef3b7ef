"""Cinder volumes and snapshots, and Nova attach/detach, through the real openstack CLI and openstacksdk.

Each volume is a libvirt volume in its own Terraform workspace; attaching
re-applies the server's domain plan with a disk referring to it. Checked
in the simulated libvirt and in the workspaces' plans.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import live, qcow2_file  # noqa: F401 (fixtures)
from test_plan_schema import check_plan

from provisioner.layout import POOL_NAME
from provisioner.provider.simulator import content_record, open_readonly, transaction
from provisioner.shared import shared_dir, shared_lock
from provisioner.volumes import volume_dir

GIB = 1 << 30


def _get(live, user: str, path: str) -> requests.Response:
    return requests.get(f"{live.url}{path}", headers={"X-Auth-Token": live.token(user)}, timeout=10)


def _get_v(live, user: str, path: str, version: str) -> requests.Response:
    """A GET at a volume microversion."""
    return requests.get(f"{live.url}{path}", timeout=10,
                        headers={"X-Auth-Token": live.token(user), "OpenStack-API-Version": f"volume {version}"})


def _post(live, user: str, path: str, body: Any) -> requests.Response:
    return requests.post(f"{live.url}{path}", json=body, headers={"X-Auth-Token": live.token(user)}, timeout=10)


def _wait(live, user: str, path: str, key: str, status: str) -> dict[str, Any]:
    """Poll a volume or snapshot until `status` (a 404 counts as status 'gone')."""
    deadline = time.monotonic() + 120
    body: Any = None
    while time.monotonic() < deadline:
        resp = _get(live, user, path)
        if resp.status_code == 404 and status == "gone":
            return {}
        body = resp.json()
        if resp.status_code == 200 and body[key]["status"] == status:
            return body[key]
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached {status}: {body}")


def _volumes_in_pool(live) -> dict[str, int]:
    conn = open_readonly(live.layout.simulator_uri)
    try:
        return {v.name(): v.info()[1] for v in conn.storagePoolLookupByName(POOL_NAME).listAllVolumes()}
    finally:
        conn.close()


def _domain_disks(live, domain: str) -> dict[str, str]:
    """target dev -> source volume of the domain's disks that are standalone volumes."""
    conn = open_readonly(live.layout.simulator_uri)
    try:
        root = ET.fromstring(conn.lookupByName(domain).XMLDesc(0))
    finally:
        conn.close()
    return {d.find("target").get("dev"): d.find("source").get("volume") for d in root.iter("disk")
            if d.find("source") is not None and d.find("source").get("volume", "").startswith("vol-")}


def _volume(live, user: str, name: str, size: int = 1) -> dict[str, Any]:
    created = live.osc(user, "volume", "create", "--size", str(size), name, "-f", "json")
    assert created["status"] == "creating" and created["size"] == size
    return _wait(live, user, f"/volume/v3/volumes/{created['id']}", "volume", "available")


@pytest.fixture(scope="module")
def server(live, qcow2_file: Path) -> dict[str, Any]:
    """An ACTIVE server of alice's."""
    live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "volimg", "-f", "json")
    created = live.osc("alice", "server", "create", "--image", "volimg", "--flavor", "m1.tiny", "--wait",
                       "volvm", "-f", "json")
    assert created["status"] == "ACTIVE", created
    return created


def test_volume_lifecycle(live) -> None:
    volume = _volume(live, "alice", "v1", size=2)
    workspace = volume_dir(live.layout, f"vol-{volume['id']}")
    plan = (workspace / "terraform" / "main.tf").read_text()
    assert check_plan(plan) == [], "the volume plan validates against the 0.9.7 schema"
    assert f"capacity = {2 * GIB}" in plan.replace("  ", " ").replace("  ", " ")
    assert json.loads((workspace / "status.json").read_text())["state"] == "applied"
    assert _volumes_in_pool(live)[f"vol-{volume['id']}.qcow2"] == 2 * GIB, "Cinder's size is GiB"

    listed = {v["Name"]: v for v in live.osc("alice", "volume", "list", "-f", "json")}
    assert listed["v1"]["Status"] == "available" and listed["v1"]["Size"] == 2
    shown = live.osc("alice", "volume", "show", "v1", "-f", "json")
    assert shown["id"] == volume["id"] and shown["attachments"] == []

    assert "v1" not in {v["Name"] for v in live.osc("bob", "volume", "list", "-f", "json")}
    resp = _get(live, "bob", f"/volume/v3/volumes/{volume['id']}")
    assert resp.status_code == 404 and resp.json()["itemNotFound"]["code"] == 404
    assert live.osc("bob", "volume", "delete", volume["id"], check=False).returncode != 0
    everyone = live.osc("admin", "volume", "list", "--all-projects", "-f", "json")
    assert volume["id"] in {v["ID"] for v in everyone}
    assert volume["id"] not in {v["ID"] for v in live.osc("admin", "volume", "list", "-f", "json")}

    live.osc("alice", "volume", "delete", "v1")
    _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "gone")
    assert f"vol-{volume['id']}.qcow2" not in _volumes_in_pool(live)
    assert not workspace.exists()


def test_attach_detach(live, server: dict[str, Any]) -> None:
    domain = f"srv-{server['id']}"
    volume = _volume(live, "alice", "data1")
    name = f"vol-{volume['id']}.qcow2"
    live.osc("alice", "server", "add", "volume", "volvm", "data1")
    attached = _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "in-use")
    assert attached["attachments"][0]["server_id"] == server["id"]
    assert attached["attachments"][0]["device"] == "/dev/vdb"
    assert _domain_disks(live, domain)["vdb"] == name, "the domain got a disk referring to the volume"
    plan = (live.layout.domain_dir(domain) / "terraform" / "main.tf").read_text()
    assert name in plan and check_plan(plan) == []
    state = json.loads((live.layout.domain_dir(domain) / "terraform" / "terraform.tfstate").read_text())
    managed = {r["instances"][0]["attributes"]["name"] for r in state["resources"] if r["type"] == "libvirt_volume"}
    assert managed and name not in managed, "the domain workspace refers to the volume, it does not manage it"
    spec = json.loads((live.layout.domain_dir(domain) / "spec.json").read_text())
    assert spec["volumes"] == [{"pool": POOL_NAME, "name": name, "format": "qcow2", "target": "vdb"}]
    listed = live.osc("alice", "volume", "list", "--name", "data1", "-f", "table")
    assert "Attached to volvm on /dev/vdb" in listed, "volume list names the server (GET /servers/detail)"
    sdk = live.sdk("alice")
    attachments = list(sdk.compute.volume_attachments(server["id"]))
    assert [(a.volume_id, a.device) for a in attachments] == [(volume["id"], "/dev/vdb")]

    # In use: no second attach, no delete (Cinder and Nova answer 400 "Invalid volume").
    again = _post(live, "alice", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                  {"volumeAttachment": {"volumeId": volume["id"]}})
    assert again.status_code == 400 and "in-use" in again.json()["badRequest"]["message"]
    in_use = requests.delete(f"{live.url}/volume/v3/volumes/{volume['id']}",
                             headers={"X-Auth-Token": live.token("alice")}, timeout=10)
    assert in_use.status_code == 400 and "attached" in in_use.json()["badRequest"]["message"]
    assert live.osc("alice", "volume", "delete", "data1", check=False).returncode != 0
    # From 3.42 an attached volume grows (through its guest where the driver can: virDomainBlockResize), in use.
    grow = requests.post(f"{live.url}/volume/v3/volumes/{volume['id']}/action", json={"os-extend": {"new_size": 2}},
                         headers={"X-Auth-Token": live.token("alice"), "OpenStack-API-Version": "volume 3.42"},
                         timeout=10)
    assert grow.status_code == 202, grow.text
    grown = _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "in-use")
    assert grown["size"] == 2 and grown["attachments"][0]["server_id"] == server["id"]
    assert _volumes_in_pool(live)[name] == 2 * GIB and _domain_disks(live, domain)["vdb"] == name
    # Cinder's own detach only forgets what os-attach recorded: Nova's disk is detached through Nova.
    for action in ({"os-detach": {}}, {"os-force_detach": {}}):
        cinder = _post(live, "admin", f"/volume/v3/volumes/{volume['id']}/action", action)
        assert cinder.status_code == 400 and "attached by Nova" in cinder.json()["badRequest"]["message"]

    second = _volume(live, "alice", "data2")
    taken = _post(live, "alice", f"/compute/v2.1/servers/{server['id']}/os-volume_attachments",
                  {"volumeAttachment": {"volumeId": second["id"], "device": "/dev/vdb"}})
    assert taken.status_code == 409 and "/dev/vdb" in taken.json()["conflictingRequest"]["message"]
    live.osc("alice", "server", "add", "volume", "--device", "/dev/vdd", "volvm", "data2")
    _wait(live, "alice", f"/volume/v3/volumes/{second['id']}", "volume", "in-use")
    assert _domain_disks(live, domain) == {"vdb": name, "vdd": f"vol-{second['id']}.qcow2"}
    shown = live.sdk("alice").compute.get_server(server["id"])
    assert [v["id"] for v in shown.attached_volumes] == [volume["id"], second["id"]], "by device"
    alices = [s for s in _get(live, "alice", "/compute/v2.1/servers/detail").json()["servers"]
              if s["id"] == server["id"]]
    assert alices[0]["os-extended-volumes:volumes_attached"] == [{"id": volume["id"]}, {"id": second["id"]}]

    live.osc("alice", "server", "remove", "volume", "volvm", "data1")
    detached = _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "available")
    assert detached["attachments"] == []
    assert _domain_disks(live, domain) == {"vdd": f"vol-{second['id']}.qcow2"}, "vdd keeps its name"
    assert [v["id"] for v in live.sdk("alice").compute.get_server(server["id"]).attached_volumes] == [second["id"]]
    assert name in _volumes_in_pool(live), "detaching keeps the volume"
    gone = requests.delete(f"{live.url}/compute/v2.1/servers/{server['id']}/os-volume_attachments/{volume['id']}",
                           headers={"X-Auth-Token": live.token("alice")}, timeout=10)
    assert gone.status_code == 404

    # The volume outlives the server: deleting the server detaches it.
    live.osc("alice", "server", "delete", "--wait", "volvm")
    released = _wait(live, "alice", f"/volume/v3/volumes/{second['id']}", "volume", "available")
    assert released["attachments"] == []
    assert f"vol-{second['id']}.qcow2" in _volumes_in_pool(live)
    for vid in (volume["id"], second["id"]):
        live.osc("alice", "volume", "delete", vid)
        _wait(live, "alice", f"/volume/v3/volumes/{vid}", "volume", "gone")


def test_snapshots(live) -> None:
    volume = _volume(live, "alice", "snapsrc")
    snap = live.osc("alice", "volume", "snapshot", "create", "--volume", "snapsrc", "s1", "-f", "json")
    assert snap["status"] == "creating"
    shown = _wait(live, "alice", f"/volume/v3/snapshots/{snap['id']}", "snapshot", "available")
    assert shown["volume_id"] == volume["id"] and shown["size"] == 1
    listed = {s["Name"]: s for s in live.osc("alice", "volume", "snapshot", "list", "-f", "json")}
    assert listed["s1"]["Status"] == "available"
    assert "s1" not in {s["Name"] for s in live.osc("bob", "volume", "snapshot", "list", "-f", "json")}

    source = live.layout.pool / f"vol-{volume['id']}.qcow2"
    plan = (volume_dir(live.layout, f"snap-{snap['id']}") / "terraform" / "main.tf").read_text()
    assert str(source) in plan and check_plan(plan) == [], "a snapshot is a copy of the volume's content"
    copy = content_record(live.layout.simulator_uri, POOL_NAME, f"snap-{snap['id']}.qcow2")
    assert copy is not None and copy.url == str(source)
    assert _volumes_in_pool(live)[f"snap-{snap['id']}.qcow2"] == GIB

    has_snapshots = requests.delete(f"{live.url}/volume/v3/volumes/{volume['id']}",
                                    headers={"X-Auth-Token": live.token("alice")}, timeout=10)
    assert has_snapshots.status_code == 400 and "snapshots" in has_snapshots.json()["badRequest"]["message"]

    live.osc("alice", "volume", "snapshot", "delete", "s1")
    _wait(live, "alice", f"/volume/v3/snapshots/{snap['id']}", "snapshot", "gone")
    assert f"snap-{snap['id']}.qcow2" not in _volumes_in_pool(live)
    assert f"vol-{volume['id']}.qcow2" in _volumes_in_pool(live), "deleting a snapshot keeps its volume"
    live.osc("alice", "volume", "delete", "snapsrc")
    _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "gone")


def test_failed_apply_is_an_error_with_the_reason(live) -> None:
    volume = _volume(live, "alice", "lost")
    # Removed behind the engine's back: the snapshot's copy has nothing to read.
    with transaction(live.layout.simulator_uri) as session:
        session.conn.storagePoolLookupByName(POOL_NAME).storageVolLookupByName(f"vol-{volume['id']}.qcow2").delete(0)
    snap = _post(live, "alice", "/volume/v3/snapshots", {"snapshot": {"volume_id": volume["id"], "name": "bad"}})
    assert snap.status_code == 202
    failed = _wait(live, "alice", f"/volume/v3/snapshots/{snap.json()['snapshot']['id']}", "snapshot", "error")
    messages = _get_v(live, "alice", "/volume/v3/messages", "3.3").json()["messages"]
    assert [m["event_id"] for m in messages if m["resource_uuid"] == failed["id"]] == ["VOLUME_SNAPSHOT_009_001"]
    live.osc("alice", "volume", "snapshot", "delete", "bad")
    live.osc("alice", "volume", "delete", "lost")
    _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "gone")


@pytest.mark.parametrize(("body", "field"), [
    ({}, "volume"),
    ({"volume": {"name": "x"}}, "volume.size"),
    ({"volume": {"size": 0}}, "volume.size"),
    ({"volume": {"size": "big"}}, "volume.size"),
    ({"volume": {"size": True}}, "volume.size"),
    ({"volume": {"size": 10 ** 23}}, "volume.size"),  # beyond max_volume_size: was a failed Terraform apply
    ({"volume": {"size": 1, "name": 7}}, "volume.name"),
    ({"volume": {"size": 1, "name": "n" * 256}}, "volume.name"),
    ({"volume": {"size": 1, "metadata": {"k": 1}}}, "volume.metadata.k"),
    ({"volume": {"size": 1, "imageRef": "abc"}}, "volume.imageRef"),
    ({"volume": {"size": 1, "availability_zone": "elsewhere"}}, "volume.availability_zone"),
    ({"volume": {"size": 1, "multiattach": True}}, "volume.multiattach"),
])
def test_bad_volume_input(live, body: dict[str, Any], field: str) -> None:
    resp = _post(live, "alice", "/volume/v3/volumes", body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"].startswith(f"{field}:"), resp.text


def test_bad_snapshot_and_attachment_input(live, qcow2_file: Path) -> None:
    missing = _post(live, "alice", "/volume/v3/snapshots", {"snapshot": {"name": "x"}})
    assert missing.status_code == 400 and "snapshot.volume_id" in missing.json()["badRequest"]["message"]
    unknown = _post(live, "alice", "/volume/v3/snapshots", {"snapshot": {"volume_id": "nope"}})
    assert unknown.status_code == 404

    volume = _volume(live, "alice", "guarded")
    others = _post(live, "bob", "/volume/v3/snapshots", {"snapshot": {"volume_id": volume["id"]}})
    assert others.status_code == 404, "another project's volume does not exist for bob"
    attach = f"/compute/v2.1/servers/{'0' * 8}-0000-0000-0000-{'0' * 12}/os-volume_attachments"
    assert _post(live, "alice", attach, {"volumeAttachment": {"volumeId": volume["id"]}}).status_code == 404

    live.osc("bob", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "bobimg")
    bobs = live.osc("bob", "server", "create", "--image", "bobimg", "--flavor", "m1.tiny", "--wait", "bobvm",
                    "-f", "json")
    path = f"/compute/v2.1/servers/{bobs['id']}/os-volume_attachments"
    stolen = _post(live, "bob", path, {"volumeAttachment": {"volumeId": volume["id"]}})
    assert stolen.status_code == 404, "bob cannot attach alice's volume"
    no_id = _post(live, "bob", path, {"volumeAttachment": {}})
    assert no_id.status_code == 400 and "volumeAttachment.volumeId" in no_id.json()["badRequest"]["message"]
    mine = _volume(live, "bob", "bobvol")
    bad_device = _post(live, "bob", path, {"volumeAttachment": {"volumeId": mine["id"], "device": "/dev/sda"}})
    assert bad_device.status_code == 400
    assert "volumeAttachment.device" in bad_device.json()["badRequest"]["message"]
    assert _get(live, "bob", f"/volume/v3/volumes/{mine['id']}").json()["volume"]["status"] == "available"
    live.osc("bob", "server", "delete", "--wait", "bobvm")
    for user, vid in (("bob", mine["id"]), ("alice", volume["id"])):
        live.osc(user, "volume", "delete", vid)
        _wait(live, user, f"/volume/v3/volumes/{vid}", "volume", "gone")


def test_openstacksdk_volume_and_snapshot(live) -> None:
    conn = live.sdk("alice")
    volume = conn.block_storage.create_volume(size=1, name="sdkvol")
    volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], interval=0.5, wait=120)
    assert f"vol-{volume.id}.qcow2" in _volumes_in_pool(live)
    assert [v.id for v in conn.block_storage.volumes(name="sdkvol")] == [volume.id]
    snapshot = conn.block_storage.create_snapshot(volume_id=volume.id, name="sdksnap")
    snapshot = conn.block_storage.wait_for_status(snapshot, "available", failures=["error"], interval=0.5, wait=120)
    assert snapshot.volume_id == volume.id and snapshot.size == 1
    conn.block_storage.delete_snapshot(snapshot)
    conn.block_storage.wait_for_delete(snapshot, interval=0.5, wait=120)
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, interval=0.5, wait=120)
    assert f"vol-{volume.id}.qcow2" not in _volumes_in_pool(live)
    assert not volume_dir(live.layout, f"vol-{volume.id}").exists()


def test_attach_to_a_server_still_building_is_409(live, qcow2_file: Path) -> None:
    volume = _volume(live, "alice", "early")
    live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "earlyimg")
    # The build waits for the shared workspace's lock: held here, the server stays in BUILD.
    with shared_lock(shared_dir(live.layout.simulator_uri, live.layout)):
        building = live.osc("alice", "server", "create", "--image", "earlyimg", "--flavor", "m1.tiny", "earlyvm",
                            "-f", "json")
        early = _post(live, "alice", f"/compute/v2.1/servers/{building['id']}/os-volume_attachments",
                      {"volumeAttachment": {"volumeId": volume["id"]}})
    assert early.status_code == 409 and "building" in early.json()["conflictingRequest"]["message"]
    assert _get(live, "alice", f"/volume/v3/volumes/{volume['id']}").json()["volume"]["status"] == "available"
    live.osc("alice", "server", "delete", "--wait", "earlyvm")
    live.osc("alice", "volume", "delete", "early")
    _wait(live, "alice", f"/volume/v3/volumes/{volume['id']}", "volume", "gone")
