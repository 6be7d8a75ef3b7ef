"""Nova's resize (confirm, revert) and rebuild actions on the simulated hypervisor, through the real server,
the openstack CLI and Terraform: the re-applied domain, the states on the way, and every refused input."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api.jobs.records import JobFormatError, RebuildServer, ResizeServer, decode
from provisioner.provider.simulator import open_readonly
from provisioner.spec.model import ImageRef
from provisioner.spec.passwords import verifies

from apitest import Live, live, names_field, nova_refusal, qcow2_file  # noqa: F401 (fixtures)


def _headers(live: Live, user: str = "alice") -> dict[str, str]:
    return {"X-Auth-Token": live.token(user), "X-OpenStack-Nova-API-Version": "2.1"}


def _wait(live: Live, server_id: str, status: str) -> dict[str, Any]:
    """The server once it shows `status` with no task under way (60 s at most)."""
    headers = _headers(live)
    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=headers, timeout=10).json()
        if body["server"]["status"] == status and body["server"]["OS-EXT-STS:task_state"] is None:
            return body["server"]
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} never reached {status}: {body}")


def _action(live: Live, server_id: str, body: Any, user: str = "alice") -> requests.Response:
    return requests.post(f"{live.url}/compute/v2.1/servers/{server_id}/action", json=body,
                         headers=_headers(live, user), timeout=30)


def _spec(live: Live, server_id: str) -> dict[str, Any]:
    return json.loads((live.layout.domain_dir(f"srv-{server_id}") / "spec.json").read_text())


def _libvirt(live: Live, server_id: str) -> tuple[int, int, bool]:
    """(vCPUs, memory in MiB, running) of the server's domain as the simulated libvirt has it."""
    conn = open_readonly(live.layout.simulator_uri)
    try:
        dom = conn.lookupByName(f"srv-{server_id}")
        _, max_memory, _, vcpus, _ = dom.info()
        return vcpus, max_memory // 1024, bool(dom.isActive())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def images(live: Live, qcow2_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two images of alice's: the one servers boot from and another (different bytes) to rebuild on."""
    other = tmp_path_factory.mktemp("img2") / "other.qcow2"
    other.write_bytes(qcow2_file.read_bytes() + b"\0" * 512)  # trailing bytes: another digest, still a qcow2
    first = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "rr-first", "-f", "json")["id"]
    second = live.osc("alice", "image", "create", "--file", str(other), "--disk-format", "qcow2",
                      "rr-second", "-f", "json")["id"]
    yield first, second


def _server(live: Live, image: str, name: str) -> str:
    created = live.osc("alice", "server", "create", "--image", image, "--flavor", "m1.tiny", "--network",
                       "default", "--wait", name, "-f", "json")
    assert created["status"] == "ACTIVE", created
    return created["id"]


def _delete(live: Live, server_id: str) -> None:
    live.osc("alice", "server", "delete", "--wait", server_id)


def test_resize_confirm_and_revert(live: Live, images: tuple[str, str]) -> None:
    server_id = _server(live, images[0], "rr-resize")
    assert _libvirt(live, server_id) == (1, 512, True)
    for body in ({"resize": {"flavorRef": "2"}}, {"rebuild": {"imageRef": images[1]}}):
        assert _action(live, server_id, body, user="bob").status_code == 404, "another project's server"

    live.osc("alice", "server", "resize", "--flavor", "m1.small", server_id)
    resized = _wait(live, server_id, "VERIFY_RESIZE")
    assert resized["flavor"]["id"] == "2" and resized["OS-EXT-STS:vm_state"] == "resized"
    assert _libvirt(live, server_id) == (1, 2048, True), "the new flavor's RAM re-applied by Terraform"
    assert _spec(live, server_id)["size"] == 1 << 30, "the root disk keeps its size (never replaced)"
    busy = _action(live, server_id, {"resize": {"flavorRef": "3"}})
    assert busy.status_code == 409 and "verify_resize" in busy.text
    live.osc("alice", "server", "resize", "revert", server_id)
    reverted = _wait(live, server_id, "ACTIVE")
    assert reverted["flavor"]["id"] == "1"
    assert _libvirt(live, server_id) == (1, 512, True)
    again = _action(live, server_id, {"confirmResize": None})
    assert again.status_code == 400 and "has not been resized" in again.text

    assert _action(live, server_id, {"resize": {"flavorRef": "3"}}).status_code == 202
    _wait(live, server_id, "VERIFY_RESIZE")
    assert _libvirt(live, server_id) == (2, 4096, True)
    confirmed = _action(live, server_id, {"confirmResize": None})
    assert confirmed.status_code == 204
    shown = _wait(live, server_id, "ACTIVE")
    assert shown["flavor"]["id"] == "3"
    down = _action(live, server_id, {"resize": {"flavorRef": "2"}})
    assert down.status_code == 400 and "resize.flavorRef" in down.text and "never resized down" in down.text
    migrations = _migrations(live, f"instance_uuid={server_id}")
    assert [(m["status"], m["old_instance_type_id"] != m["new_instance_type_id"]) for m in migrations] == [
        ("confirmed", True), ("reverted", True)], "each resize is a migration, newest first"
    assert migrations[0]["source_compute"] == migrations[0]["dest_compute"], "on the one host"
    assert _migrations(live, "status=reverted&instance_uuid=" + server_id) == migrations[1:]
    _delete(live, server_id)


def _migrations(live: Live, query: str, version: str = "2.1", user: str = "admin") -> list[dict[str, Any]]:
    resp = requests.get(f"{live.url}/compute/v2.1/os-migrations?{query}", timeout=10,
                        headers={"X-Auth-Token": live.token(user), "X-OpenStack-Nova-API-Version": version})
    assert resp.status_code == 200, resp.text
    return resp.json()["migrations"]


def test_revert_to_a_flavor_deleted_meanwhile(live: Live, images: tuple[str, str]) -> None:
    """Nova keeps the old flavor in the instance: a revert after its delete re-applies its vCPUs and RAM."""
    live.osc("admin", "flavor", "create", "--id", "rr-gone", "--vcpus", "2", "--ram", "768", "--disk", "1",
             "rr-gone")
    created = live.osc("alice", "server", "create", "--image", images[0], "--flavor", "rr-gone", "--network",
                       "default", "--wait", "rr-gone-flavor", "-f", "json")
    server_id = created["id"]
    assert _libvirt(live, server_id) == (2, 768, True)
    for deleted_before_resize in (True, False):  # Tempest's order, then a delete while VERIFY_RESIZE
        if deleted_before_resize:
            live.osc("admin", "flavor", "delete", "rr-gone")
        assert _action(live, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
        _wait(live, server_id, "VERIFY_RESIZE")
        assert _libvirt(live, server_id) == (1, 2048, True)  # m1.small
        if not deleted_before_resize:
            live.osc("admin", "flavor", "delete", "rr-gone")
        assert _action(live, server_id, {"revertResize": None}).status_code == 202
        reverted = _wait(live, server_id, "ACTIVE")
        assert reverted["flavor"]["id"] == "rr-gone" and _libvirt(live, server_id) == (2, 768, True)
        live.osc("admin", "flavor", "create", "--id", "rr-gone", "--vcpus", "2", "--ram", "768", "--disk", "1",
                 "rr-gone")
    live.osc("admin", "flavor", "delete", "rr-gone")
    assert [m["status"] for m in _migrations(live, f"instance_uuid={server_id}")] == ["reverted", "reverted"]
    _delete(live, server_id)


def test_resize_keeps_a_stopped_server_stopped(live: Live, images: tuple[str, str]) -> None:
    server_id = _server(live, images[0], "rr-stopped")
    live.osc("alice", "server", "stop", server_id)
    _wait(live, server_id, "SHUTOFF")
    assert _action(live, server_id, {"resize": {"flavorRef": 2}}).status_code == 202, "an integer id too"
    _wait(live, server_id, "VERIFY_RESIZE")
    assert _libvirt(live, server_id) == (1, 2048, False), "stopped again after the re-apply"
    assert _action(live, server_id, {"confirmResize": None}).status_code == 204
    _wait(live, server_id, "SHUTOFF")
    _delete(live, server_id)


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"resize": {"flavorRef": None}}, "resize.flavorRef", 400),
    ({"resize": {}}, "resize.flavorRef", 400),
    ({"resize": {"flavorRef": True}}, "resize.flavorRef", 400),
    ({"resize": {"flavorRef": "no-such-flavor"}}, "resize.flavorRef", 400),
    ({"resize": {"flavorRef": "1"}}, "must change flavor", 400),
    ({"resize": {"flavorRef": "2", "zone": "x"}}, "resize: unknown field 'zone'", 400),
    ({"resize": "2"}, "resize: '2' is not an object", 400),
    ({"confirmResize": None}, "has not been resized", 400),
    ({"revertResize": None}, "has not been resized", 400),
    ({"rebuild": {}}, "rebuild.imageRef", 400),
    ({"rebuild": {"imageRef": 7}}, "rebuild.imageRef", 400),
    ({"rebuild": {"imageRef": "no-such-image"}}, "rebuild.imageRef", 400),
    ({"rebuild": {"imageRef": "IMAGE", "adminPass": 1}}, "rebuild.adminPass", 400),
    ({"rebuild": {"imageRef": "IMAGE", "adminPass": "x" * 256}}, "rebuild.adminPass", 400),
    ({"rebuild": {"imageRef": "IMAGE", "name": ""}}, "rebuild.name", 400),
    ({"rebuild": {"imageRef": "IMAGE", "metadata": {"k": 1}}}, "rebuild.metadata.k: 1 is not a string", 400),
    ({"rebuild": {"imageRef": "IMAGE", "preserve_ephemeral": "yes"}}, "rebuild.preserve_ephemeral", 400),
    ({"rebuild": {"imageRef": "IMAGE", "user_data": "eA=="}}, "rebuild.user_data: is accepted from microversion 2.57 on", 400),
    ({"rebuild": "an-image"}, "rebuild: 'an-image' is not an object", 400),
    ({"rebuild": {"imageRef": "IMAGE", "accessIPv4": "192.0.2"}}, "rebuild.accessIPv4: '192.0.2' is not a valid ipv4",
     400),
    ({"rebuild": {"imageRef": "IMAGE", "accessIPv6": "::g"}}, "rebuild.accessIPv6: '::g' is not a valid ipv6", 400),
    ({"rebuild": {"imageRef": "IMAGE", "OS-DCF:diskConfig": "x"}}, "rebuild.OS-DCF:diskConfig: 'x': use one of", 400),
    ({"rebuild": {"imageRef": "IMAGE", "description": "d"}}, "rebuild.description: is accepted from microversion 2.19",
     400),
    ({"rebuild": {"imageRef": "IMAGE", "name": "  "}}, "rebuild.name", 400),
])
def test_refused_inputs_change_nothing(live: Live, images: tuple[str, str], refused_server: str,
                                       body: dict[str, Any], field: str, status: int) -> None:
    body = json.loads(json.dumps(body).replace('"IMAGE"', json.dumps(images[1])))
    before = _wait(live, refused_server, "ACTIVE")
    resp = _action(live, refused_server, body)
    message = resp.json()["badRequest"]["message"]
    assert resp.status_code == status, resp.text
    assert field in message if ": " not in field else nova_refusal(message, field), message
    after = _wait(live, refused_server, "ACTIVE")
    assert (after["flavor"], after["image"]["id"], after["name"]) == (before["flavor"], before["image"]["id"],
                                                                      before["name"])


@pytest.fixture(scope="module")
def refused_server(live: Live, images: tuple[str, str]) -> Iterator[str]:
    """A server the refused requests are sent to (none of them may change it)."""
    server_id = _server(live, images[0], "rr-refused")
    yield server_id
    _delete(live, server_id)


def test_rebuild_keeps_id_addresses_and_applies_the_image(live: Live, images: tuple[str, str]) -> None:
    server_id = _server(live, images[0], "rr-rebuild")
    before = _wait(live, server_id, "ACTIVE")
    old_digest = _spec(live, server_id)["image"]["digest"]
    resp = _action(live, server_id, {"rebuild": {"imageRef": images[1], "name": "rr-rebuilt",
                                                 "metadata": {"rebuild": "server"}, "adminPass": "rebuildPassw0rd"}})
    assert resp.status_code == 202, resp.text
    answer = resp.json()["server"]
    assert answer["id"] == server_id and answer["image"]["id"] == images[1] and answer["name"] == "rr-rebuilt"
    assert answer["adminPass"] == "rebuildPassw0rd" and answer["status"] == "REBUILD"
    assert "OS-EXT-STS:task_state" not in answer, "the update view before 2.75"
    after = _wait(live, server_id, "ACTIVE")
    assert after["addresses"] == before["addresses"] and after["metadata"] == {"rebuild": "server"}
    spec = _spec(live, server_id)
    assert spec["image"]["digest"] != old_digest, "the domain re-applied on the new image"
    admin = next(u for u in spec["users"] if isinstance(u, dict) and u["name"] == spec["admin_user"])
    assert verifies("rebuildPassw0rd", admin["hashed_passwd"]) and "rebuildPassw0rd" not in json.dumps(spec)

    live.osc("alice", "server", "stop", server_id)
    _wait(live, server_id, "SHUTOFF")
    rebuilt = live.osc("alice", "server", "rebuild", "--image", "rr-first", server_id, "-f", "json")
    assert rebuilt["id"] == server_id
    shown = _wait(live, server_id, "SHUTOFF")
    assert shown["image"]["id"] == images[0] and _spec(live, server_id)["image"]["digest"] == old_digest
    assert _libvirt(live, server_id)[2] is False, "a stopped server stays stopped"
    _delete(live, server_id)


def test_rebuild_shows_the_user_data_from_257(live: Live, images: tuple[str, str], tmp_path: Path) -> None:
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npackages: [htop]\n")
    server_id = live.osc("alice", "server", "create", "--image", images[0], "--flavor", "m1.tiny", "--network",
                         "default", "--user-data", str(user_data), "--wait", "rr-user-data", "-f", "json")["id"]
    headers = {**_headers(live), "X-OpenStack-Nova-API-Version": "2.57"}
    resp = requests.post(f"{live.url}/compute/v2.1/servers/{server_id}/action", headers=headers, timeout=10,
                         json={"rebuild": {"imageRef": images[1]}})
    assert resp.status_code == 202, resp.text
    assert base64.b64decode(resp.json()["server"]["user_data"]) == user_data.read_bytes()
    _wait(live, server_id, "ACTIVE")
    old = _action(live, server_id, {"rebuild": {"imageRef": images[0]}})
    assert old.status_code == 202 and "user_data" not in old.json()["server"], "2.57's field"
    _wait(live, server_id, "ACTIVE")
    _delete(live, server_id)


def test_rebuild_sets_key_name_from_254_and_user_data_from_257(live: Live, images: tuple[str, str]) -> None:
    """The record shows the new key pair and user data at once, and the rebuilt guest's spec has them (as a
    create makes them: the key pair's key and the user data's keys for the admin, its users and packages),
    the admin's password kept; before their microversion both are refused."""
    live.osc("alice", "keypair", "create", "rr-key")  # prints the private key
    public_key = live.sdk("alice").compute.get_keypair("rr-key").public_key
    server_id = live.osc("alice", "server", "create", "--image", images[0], "--flavor", "m1.tiny", "--network",
                         "default", "--password", "createPassw0rd", "--wait", "rr-keyed", "-f", "json")["id"]
    v254, v257 = ({**_headers(live), "X-OpenStack-Nova-API-Version": v} for v in ("2.54", "2.57"))
    url = f"{live.url}/compute/v2.1/servers/{server_id}/action"
    for body, version, where in (
            ({"key_name": "rr-key"}, "2.53", "rebuild.key_name: is accepted from microversion 2.54"),
            ({"user_data": "I2Nsb3VkLWNvbmZpZwo="}, "2.56", "rebuild.user_data: is accepted from microversion 2.57")):
        refused = requests.post(url, json={"rebuild": {"imageRef": images[1], **body}}, timeout=10,
                                headers={**_headers(live), "X-OpenStack-Nova-API-Version": version})
        assert refused.status_code == 400 and nova_refusal(refused.json()["badRequest"]["message"], where), \
            refused.text
    for body, headers, where in (({"key_name": "no-such-key"}, v254, "rebuild.key_name"),
                                 ({"key_name": 5}, v254, "rebuild.key_name"),
                                 ({"user_data": "not base64!"}, v257, "rebuild.user_data"),
                                 ({"user_data": base64.b64encode(b"#include\nhttp://127.0.0.1/cc\n").decode()}, v257,
                                  "rebuild.user_data")):
        refused = requests.post(url, json={"rebuild": {"imageRef": images[1], **body}}, headers=headers, timeout=10)
        assert refused.status_code == 400, refused.text
        assert names_field(refused.json()["badRequest"]["message"], where), refused.text

    resp = requests.post(url, json={"rebuild": {"imageRef": images[1], "key_name": "rr-key"}}, headers=v254,
                         timeout=10)
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["key_name"] == "rr-key"
    assert _wait(live, server_id, "ACTIVE")["key_name"] == "rr-key"
    spec = _spec(live, server_id)
    admin = next(u for u in spec["users"] if isinstance(u, dict) and u["name"] == spec["admin_user"])
    assert admin["ssh_authorized_keys"] == [public_key] and verifies("createPassw0rd", admin["hashed_passwd"])

    user_data = "#cloud-config\npackages: [htop]\nusers:\n  - name: carol\n"
    encoded = base64.b64encode(user_data.encode()).decode()
    resp = requests.post(url, json={"rebuild": {"imageRef": images[0], "user_data": encoded, "key_name": None}},
                         headers=v257, timeout=10)
    assert resp.status_code == 202, resp.text
    assert (resp.json()["server"]["user_data"], resp.json()["server"]["key_name"]) == (encoded, None)
    assert _wait(live, server_id, "ACTIVE")["key_name"] is None
    spec = _spec(live, server_id)
    assert spec["packages"] == ["htop"] and "carol" in [u["name"] for u in spec["users"] if isinstance(u, dict)]
    admin = next(u for u in spec["users"] if isinstance(u, dict) and u["name"] == spec["admin_user"])
    assert admin["ssh_authorized_keys"] == [] and verifies("createPassw0rd", admin["hashed_passwd"])
    live.osc("alice", "keypair", "delete", "rr-key")
    _delete(live, server_id)


def test_failed_resize_is_error_with_the_reason(live: Live, images: tuple[str, str]) -> None:
    server_id = _server(live, images[0], "rr-failing")
    spec_file = live.layout.domain_dir(f"srv-{server_id}") / "spec.json"
    kept = spec_file.read_text()
    spec_file.write_text("{damaged")  # the job cannot read the domain's spec: its failure path runs
    try:
        assert _action(live, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
        failed = _wait(live, server_id, "ERROR")
    finally:
        spec_file.write_text(kept)
    assert failed["flavor"]["id"] == "1" and "resize to flavor 2 failed" in failed["fault"]["message"]
    assert _action(live, server_id, {"confirmResize": None}).status_code == 400, "no resize left pending"
    (migration,) = _migrations(live, f"instance_uuid={server_id}", "2.59")
    assert (migration["status"], migration["migration_type"], migration["instance_uuid"]) == (
        "error", "resize", server_id) and migration["uuid"]
    assert _migrations(live, f"instance_uuid={server_id}&limit=0", "2.59") == []
    refused = requests.get(f"{live.url}/compute/v2.1/os-migrations", timeout=10,
                           headers={"X-Auth-Token": live.token("alice")})
    assert refused.status_code == 403, "an admin's"
    _delete(live, server_id)


def test_job_records_round_trip_and_refuse_bad_args() -> None:
    image = ImageRef("/store/a.qcow2", "qcow2", "ab" * 32, "a")
    for job in (ResizeServer("s1", "2"), ResizeServer("s1", "1", revert=True),
                RebuildServer("s1", image, "$6$salt$hash", stopped=True), RebuildServer("s1", image),
                RebuildServer("s1", image, guest_data=True)):
        assert decode(job.kind, "s1", json.loads(json.dumps(job.to_args()))) == job
    for kind, args in (("resize", {}), ("resize", {"flavor_id": "2", "revert": "no"}), ("rebuild", {}),
                       ("rebuild", {"image": {"source": "x"}}),
                       ("rebuild", {"image": {"source": "x", "format": "q", "digest": "d", "slug": "s"},
                                    "password_hash": 3}),
                       ("rebuild", {"image": {"source": "x", "format": "q", "digest": "d", "slug": "s"},
                                    "guest_data": "yes"})):
        with pytest.raises(JobFormatError, match=f"{kind} job: args"):
            decode(kind, "s1", args)


def test_resize_over_the_cores_quota_is_refused(live: Live, images: tuple[str, str]) -> None:
    server_id = _server(live, images[0], "rr-quota")
    project = _wait(live, server_id, "ACTIVE")["tenant_id"]
    admin = {"X-Auth-Token": live.token("admin")}
    url = f"{live.url}/compute/v2.1/os-quota-sets/{project}"
    before = requests.get(url, headers=admin, timeout=10).json()["quota_set"]["cores"]
    used = sum(s["flavor"]["vcpus"] for s in requests.get(
        f"{live.url}/compute/v2.1/servers/detail", headers={**_headers(live), "X-OpenStack-Nova-API-Version": "2.47"},
        timeout=10).json()["servers"])
    assert requests.put(url, headers=admin, json={"quota_set": {"cores": used}}, timeout=10).status_code == 200
    try:
        resp = _action(live, server_id, {"resize": {"flavorRef": "3"}})  # one more vCPU than m1.tiny
        assert resp.status_code == 403 and "cores" in resp.text, resp.text
        assert _wait(live, server_id, "ACTIVE")["flavor"]["id"] == "1"
        assert _action(live, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202, "same vCPUs: fits"
        _wait(live, server_id, "VERIFY_RESIZE")
    finally:
        requests.put(url, headers=admin, json={"quota_set": {"cores": before}}, timeout=10)
    _delete(live, server_id)
