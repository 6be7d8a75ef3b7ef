"""Nova's createImage and createBackup on the simulated hypervisor, through the real server, the openstack CLI
and Terraform: the image's states and properties, a server booted from it, backup rotation, the failure path
and every refused input."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from api.jobs.records import ImageServer, JobFormatError, decode
from provisioner.provider.simulator import open_readonly

from apitest import Live, live, nova_refusal, qcow2_file  # noqa: F401 (fixtures)


HOLD_LOCK = ("import fcntl, os, sys, time\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\n"
             "print('locked', flush=True)\n"
             "time.sleep(600)\n")


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding the flock on `path` (as `provision DOMAIN` does while it applies), once it has it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def _headers(live: Live, version: str = "2.1") -> dict[str, str]:
    return {"X-Auth-Token": live.token("alice"), "X-OpenStack-Nova-API-Version": version}


def _action(live: Live, server_id: str, body: Any, version: str = "2.1") -> requests.Response:
    return requests.post(f"{live.url}/compute/v2.1/servers/{server_id}/action", json=body,
                         headers=_headers(live, version), timeout=30)


def _idle(live: Live, server_id: str) -> dict[str, Any]:
    """The server once no task is under way (60 s at most)."""
    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live),
                            timeout=10).json()["server"]
        if body["OS-EXT-STS:task_state"] is None:
            return body
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} stayed busy: {body}")


def _images(live: Live) -> list[dict[str, Any]]:
    return requests.get(f"{live.url}/image/v2/images", headers={"X-Auth-Token": live.token("alice")},
                        timeout=10).json()["images"]


@pytest.fixture(scope="module")
def server(live: Live, qcow2_file: Path) -> str:
    """An ACTIVE server of alice's, booted from an image of hers."""
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "snap-base", "-f", "json")["id"]
    created = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny", "--network",
                       "default", "--wait", "snap-source", "-f", "json")
    assert created["status"] == "ACTIVE", created
    return created["id"]


def test_create_image_then_boot_a_server_from_it(live: Live, server: str) -> None:
    made = live.osc("alice", "server", "image", "create", "--name", "snap-one", "--property", "purpose=test",
                    "--wait", server, "-f", "json")
    image = live.osc("alice", "image", "show", made["id"], "-f", "json")
    assert image["status"] == "active" and image["disk_format"] == "qcow2" and image["visibility"] == "private"
    properties = image["properties"]
    assert properties["image_type"] == "snapshot" and properties["instance_uuid"] == server
    assert properties["purpose"] == "test" and properties["base_image_ref"]
    assert _idle(live, server)["status"] == "ACTIVE"
    booted = live.osc("alice", "server", "create", "--image", made["id"], "--flavor", "m1.tiny", "--network",
                      "default", "--wait", "from-snap", "-f", "json")
    assert booted["status"] == "ACTIVE"
    live.osc("alice", "server", "delete", "--wait", booted["id"])


def test_location_header_and_the_2_45_body(live: Live, server: str) -> None:
    old = _action(live, server, {"createImage": {"name": "snap-old"}})
    assert old.status_code == 202 and old.content == b""
    image_id = old.headers["Location"].rsplit("/", 1)[1]
    assert old.headers["Location"].endswith(f"/image/v2/images/{image_id}")
    assert any(i["id"] == image_id for i in _images(live))
    _idle(live, server)
    new = _action(live, server, {"createImage": {"name": "snap-new", "metadata": {"k": "v"}}}, "2.45")
    assert new.status_code == 202 and new.json()["image_id"] == new.headers["Location"].rsplit("/", 1)[1]
    _idle(live, server)
    statuses = {i["id"]: i["status"] for i in _images(live)}
    assert statuses[image_id] == statuses[new.json()["image_id"]] == "active"


def test_states_on_the_way_and_a_busy_server_refuses(live: Live, server: str) -> None:
    # An apply of the domain holds its lock: the copy waits for it, so the job stays under way meanwhile.
    lock = live.layout.domain_dir(f"srv-{server}") / "lock"
    holder = hold_lock(lock)
    try:
        first = _action(live, server, {"createImage": {"name": "snap-busy-1"}}, "2.45")
        assert first.status_code == 202
        image_id = first.json()["image_id"]
        body: dict[str, Any] = {}
        for _ in range(300):  # until the job is copying (bounded)
            body = requests.get(f"{live.url}/compute/v2.1/servers/{server}", headers=_headers(live),
                                timeout=10).json()["server"]
            if body["OS-EXT-STS:task_state"] == "image_pending_upload":
                break
            time.sleep(0.1)
        assert body["OS-EXT-STS:task_state"] == "image_pending_upload"
        assert {i["id"]: i["status"] for i in _images(live)}[image_id] == "saving"
        second = _action(live, server, {"createImage": {"name": "snap-busy-2"}})
        assert second.status_code == 409 and "image_pending_upload" in second.text
    finally:
        holder.kill()
        holder.wait()
    _idle(live, server)
    images = {i["name"]: i["status"] for i in _images(live)}
    assert images["snap-busy-1"] == "active" and "snap-busy-2" not in images


def _write_disk(live: Live, server_id: str, content: bytes) -> None:
    """Write the server's simulated root disk file (the test driver holds no bytes), as its guest would."""
    conn = open_readonly(live.layout.simulator_uri)
    try:
        pool = conn.storagePoolLookupByName("provisioner")
        path = Path(pool.storageVolLookupByName(next(
            v.name() for v in pool.listAllVolumes() if v.name().startswith(f"srv-{server_id}-disk-"))).path())
    finally:
        conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_backup_rotation_keeps_the_newest(live: Live, server: str) -> None:
    # Content of its own: a backup holding exactly the base image's bytes is that image's version in use.
    _write_disk(live, server, b"written by the guest" * 4096)
    made = []
    for n in range(3):
        resp = _action(live, server, {"createBackup": {"name": f"nightly-{n}", "backup_type": "daily",
                                                       "rotation": 2}}, "2.45")
        assert resp.status_code == 202, resp.text
        made.append(resp.json()["image_id"])
        _idle(live, server)
    weekly = _action(live, server, {"createBackup": {"name": "weekly-0", "backup_type": "weekly", "rotation": 1}})
    assert weekly.status_code == 202
    _idle(live, server)
    backups = {i["id"]: i for i in _images(live) if i.get("image_type") == "backup"}
    assert made[0] not in backups and made[1] in backups and made[2] in backups
    assert {i["backup_type"] for i in backups.values()} == {"daily", "weekly"} and len(backups) == 3


@pytest.mark.parametrize("body, where", [
    ({"createImage": {}}, "createImage.name"),
    ({"createImage": {"name": ""}}, "createImage.name"),
    ({"createImage": {"name": "x" * 256}}, "createImage.name"),
    ({"createImage": {"name": "ok", "metadata": ["a"]}}, "createImage.metadata"),
    ({"createImage": {"name": "ok", "metadata": {"k": 1}}}, "createImage.metadata.k: 1 is not a string"),
    ({"createImage": "snap"}, "createImage"),
    ({"createBackup": {"name": "b", "rotation": 1}}, "createBackup.backup_type"),
    ({"createBackup": {"name": "b", "backup_type": "daily"}}, "createBackup.rotation"),
    ({"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}}, "createBackup.rotation"),
    ({"createBackup": {"name": "b", "backup_type": "daily", "rotation": "2"}}, "createBackup.rotation"),
    ({"createBackup": {"name": "b", "backup_type": "daily", "rotation": True}}, "createBackup.rotation"),
])
def test_bad_requests_make_no_image(live: Live, server: str, body: dict[str, Any], where: str) -> None:
    before = {i["id"] for i in _images(live)}
    resp = _action(live, server, body)
    message = resp.json()["badRequest"]["message"]
    assert resp.status_code == 400 and (where in message if ": " not in where else nova_refusal(message, where)), \
        resp.text
    assert {i["id"] for i in _images(live)} == before
    assert _idle(live, server)["status"] == "ACTIVE"


def test_a_failed_copy_kills_the_image(live: Live, qcow2_file: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.qcow2"
    own.write_bytes(qcow2_file.read_bytes() + b"\0" * 1024)  # its own store version, to break alone
    image = live.osc("alice", "image", "create", "--file", str(own), "--disk-format", "qcow2", "snap-doomed-base",
                     "-f", "json")["id"]
    created = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny", "--network",
                       "default", "--wait", "snap-doomed", "-f", "json")
    try:
        # The simulated disk holds its base image only: with the base's file gone there is nothing to copy.
        base = next(live.layout.images.glob("snap-doomed-base@*"))
        base.unlink()
        resp = _action(live, created["id"], {"createImage": {"name": "snap-killed"}}, "2.45")
        assert resp.status_code == 202
        after = _idle(live, created["id"])
        assert after["status"] == "ACTIVE"
        [killed] = [i for i in _images(live) if i["id"] == resp.json()["image_id"]]
        assert killed["status"] == "killed"
    finally:
        live.osc("alice", "server", "delete", "--wait", created["id"])


def test_the_job_record_round_trips_and_refuses_bad_args() -> None:
    job = ImageServer("srv", "img", "daily", 3)
    assert decode(job.kind, "srv", job.to_args()) == job
    assert decode(job.kind, "srv", {"image_id": "img"}) == ImageServer("srv", "img")
    for args in ({}, {"image_id": 3}, {"image_id": "i", "rotation": -1}, {"image_id": "i", "backup_type": 1}):
        with pytest.raises(JobFormatError):
            decode(job.kind, "srv", args)


def test_novas_image_api_shows_the_snapshot(live: Live, server: str) -> None:
    _write_disk(live, server, b"nova's view" * 4096)  # bytes of its own: deletable (no server boots from them)
    made = _action(live, server, {"createImage": {"name": "nova view", "metadata": {"k": "v"}}}, "2.45")
    image_id = made.json()["image_id"]
    _idle(live, server)
    base = f"{live.url}/compute/v2.1/images"
    image = requests.get(f"{base}/{image_id}", headers=_headers(live), timeout=10).json()["image"]
    assert (image["name"], image["status"], image["progress"]) == ("nova view", "ACTIVE", 100)
    assert image["server"]["id"] == server and image["metadata"]["k"] == "v"
    assert image["metadata"]["image_type"] == "snapshot" and image["OS-EXT-IMG-SIZE:size"] > 0
    listed = requests.get(f"{base}/detail", params={"server": server, "type": "snapshot", "name": "nova view"},
                          headers=_headers(live), timeout=10).json()["images"]
    assert [i["id"] for i in listed] == [image_id]
    short = requests.get(base, params={"limit": "1"}, headers=_headers(live), timeout=10).json()["images"]
    assert len(short) == 1 and set(short[0]) == {"id", "name", "links"}
    assert requests.get(base, params={"limit": "x"}, headers=_headers(live), timeout=10).status_code == 400
    assert requests.get(base, headers=_headers(live, "2.36"), timeout=10).status_code == 404

    meta = f"{base}/{image_id}/metadata"
    merged = requests.post(meta, json={"metadata": {"a": "1"}}, headers=_headers(live), timeout=10).json()
    assert merged["metadata"]["a"] == "1" and merged["metadata"]["k"] == "v"
    item = requests.put(f"{meta}/b", json={"meta": {"b": "2"}}, headers=_headers(live), timeout=10)
    assert item.json() == {"meta": {"b": "2"}}
    assert requests.put(f"{meta}/b", json={"meta": {"c": "2"}}, headers=_headers(live), timeout=10).status_code == 400
    assert requests.delete(f"{meta}/a", headers=_headers(live), timeout=10).status_code == 204
    assert requests.get(f"{meta}/a", headers=_headers(live), timeout=10).status_code == 404
    glance = live.osc("alice", "image", "show", image_id, "-f", "json")["properties"]
    assert glance["b"] == "2" and "a" not in glance

    assert requests.delete(f"{base}/{image_id}", headers=_headers(live), timeout=10).status_code == 204
    assert requests.get(f"{base}/{image_id}", headers=_headers(live), timeout=10).status_code == 404
    assert image_id not in {i["id"] for i in _images(live)}


def test_a_snapshot_holding_only_its_image_borrows_that_version(live: Live, qcow2_file: Path, tmp_path: Path) -> None:
    own = tmp_path / "plain.qcow2"  # a blank image of its own size: qemu-img convert gives back these bytes
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(own), "48M"], check=True)
    base = live.osc("alice", "image", "create", "--file", str(own), "--disk-format", "qcow2", "snap-plain-base",
                    "-f", "json")["id"]
    created = live.osc("alice", "server", "create", "--image", base, "--flavor", "m1.tiny", "--network",
                       "default", "--wait", "snap-plain", "-f", "json")
    try:
        # Its disk was never written: flattened, it is its image's bytes, which that server boots from.
        resp = _action(live, created["id"], {"createImage": {"name": "plain snapshot"}}, "2.45")
        image_id = resp.json()["image_id"]
        _idle(live, created["id"])
        shown = live.osc("alice", "image", "show", image_id, "-f", "json")
        assert shown["status"] == "active" and shown["checksum"] == live.osc(
            "alice", "image", "show", base, "-f", "json")["checksum"]
        tasks = requests.get(f"{live.url}/image/v2/images/{image_id}/tasks",
                             headers={"X-Auth-Token": live.token("alice")}, timeout=10)
        assert tasks.status_code == 200 and tasks.json() == {"tasks": []}
        assert requests.get(f"{live.url}/image/v2/images/{image_id}/tasks", timeout=10,
                            headers={"X-Auth-Token": live.token("bob")}).status_code == 404
        # Deleting the snapshot deletes its row only: the version stays, its server's image with it.
        assert requests.delete(f"{live.url}/compute/v2.1/images/{image_id}", headers=_headers(live),
                               timeout=10).status_code == 204
        assert image_id not in {i["id"] for i in _images(live)}
        assert live.osc("alice", "image", "show", base, "-f", "json")["status"] == "active"
        assert requests.delete(f"{live.url}/compute/v2.1/images/", headers=_headers(live),
                               timeout=10).status_code == 404
    finally:
        live.osc("alice", "server", "delete", "--wait", created["id"])


def test_glance_lists_backups_by_their_properties(live: Live, server: str) -> None:
    """Glance's filters on additional properties and sort_key/sort_dir, as Tempest's test_create_backup asks."""
    _write_disk(live, server, b"listed" * 4096)
    names = []
    for n in range(2):
        names.append(f"weekly-list-{n}")
        assert _action(live, server, {"createBackup": {"name": names[-1], "backup_type": "listed",
                                                       "rotation": 5}}).status_code == 202
        _idle(live, server)
    headers = {"X-Auth-Token": live.token("alice")}
    params = {"image_type": "backup", "backup_type": "listed", "instance_uuid": server, "status": "active"}
    listed = requests.get(f"{live.url}/image/v2/images", params={**params, "sort_key": "created_at",
                                                                  "sort_dir": "asc"}, headers=headers, timeout=10)
    assert [i["name"] for i in listed.json()["images"]] == names
    newest = requests.get(f"{live.url}/image/v2/images", params={**params, "sort_key": "created_at"},
                          headers=headers, timeout=10)
    assert [i["name"] for i in newest.json()["images"]] == names[::-1]
    none = requests.get(f"{live.url}/image/v2/images", params={**params, "backup_type": "other"}, headers=headers,
                        timeout=10)
    assert none.json()["images"] == []
    bad = requests.get(f"{live.url}/image/v2/images", params={"sort_dir": "up"}, headers=headers, timeout=10)
    assert bad.status_code == 400 and "sort_dir" in bad.text
