"""Glance image members, interoperable import (glance-direct) and schemas (issue #12, found by Tempest).

A shared image is offered to another project, which accepts or rejects it; only
glance-direct import is offered (the API never fetches from the network), and the
staged data is not usable until imported.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

RAW = b"\x00raw-image-data" + os.urandom(4096)


def _session(live: Live, user: str) -> tuple[dict[str, str], str]:
    """Headers with a token for `user`, and the id of its project."""
    token = live.token(user)
    resp = requests.get(f"{live.url}/identity/v3/auth/tokens", timeout=30,
                        headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    return {"X-Auth-Token": token}, resp.json()["token"]["project"]["id"]


def _create(live: Live, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = requests.post(f"{live.url}/image/v2/images", timeout=30, headers=headers,
                         json={"name": "shared-img", "disk_format": "raw", "container_format": "bare", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _listed(live: Live, headers: dict[str, str], **params: str) -> list[str]:
    resp = requests.get(f"{live.url}/image/v2/images", params=params, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["images"]]


def _member(live: Live, headers: dict[str, str], image_id: str, member: str, method: str = "GET",
            **body: Any) -> requests.Response:
    return requests.request(method, f"{live.url}/image/v2/images/{image_id}/members/{member}", timeout=30,
                            headers=headers, json=body or None)


def test_a_shared_image_is_offered_accepted_listed_and_withdrawn(live: Live) -> None:
    alice, _ = _session(live, "alice")
    bob, bob_project = _session(live, "bob")
    image = _create(live, alice)
    assert image["visibility"] == "shared"
    assert requests.get(f"{live.url}/image/v2/images/{image['id']}", headers=bob, timeout=30).status_code == 404

    added = requests.post(f"{live.url}/image/v2/images/{image['id']}/members", json={"member": bob_project},
                          headers=alice, timeout=30)
    assert added.status_code == 200, added.text
    assert {k: added.json()[k] for k in ("image_id", "member_id", "status")} == \
        {"image_id": image["id"], "member_id": bob_project, "status": "pending"}
    again = requests.post(f"{live.url}/image/v2/images/{image['id']}/members", json={"member": bob_project},
                          headers=alice, timeout=30)
    assert again.status_code == 409, again.text

    # Pending: bob can read it, but it is not in his list unless he asks for pending ones.
    assert requests.get(f"{live.url}/image/v2/images/{image['id']}", headers=bob, timeout=30).status_code == 200
    assert image["id"] not in _listed(live, bob)
    assert _listed(live, bob, member_status="pending", visibility="shared") == [image["id"]]
    # The owner cannot answer for the member.
    refused = _member(live, alice, image["id"], bob_project, "PUT", status="accepted")
    assert refused.status_code == 403, refused.text
    accepted = _member(live, bob, image["id"], bob_project, "PUT", status="accepted")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert image["id"] in _listed(live, bob)
    members = requests.get(f"{live.url}/image/v2/images/{image['id']}/members", headers=bob, timeout=30)
    assert [m["member_id"] for m in members.json()["members"]] == [bob_project]
    assert _member(live, bob, image["id"], bob_project).json()["status"] == "accepted"

    rejected = _member(live, bob, image["id"], bob_project, "PUT", status="rejected")
    assert rejected.status_code == 200, rejected.text
    assert image["id"] not in _listed(live, bob)
    assert image["id"] in _listed(live, bob, member_status="all")

    # Only the owner withdraws the offer; then bob no longer sees the image at all.
    assert _member(live, bob, image["id"], bob_project, "DELETE").status_code == 403
    assert _member(live, alice, image["id"], bob_project, "DELETE").status_code == 204
    assert requests.get(f"{live.url}/image/v2/images/{image['id']}", headers=bob, timeout=30).status_code == 404
    assert _member(live, alice, image["id"], bob_project).status_code == 404


@pytest.mark.parametrize(("body", "named"), [({"status": "notavalidstatus"}, "status"), ({}, "status"),
                                             ({"status": 1}, "status")])
def test_a_bad_member_status_is_refused_naming_the_field(live: Live, body: dict[str, Any], named: str) -> None:
    alice, _ = _session(live, "alice")
    bob, bob_project = _session(live, "bob")
    image = _create(live, alice)
    requests.post(f"{live.url}/image/v2/images/{image['id']}/members", json={"member": bob_project},
                  headers=alice, timeout=30)
    resp = requests.put(f"{live.url}/image/v2/images/{image['id']}/members/{bob_project}", json=body,
                        headers=bob, timeout=30)
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["error"]["message"]
    assert _member(live, bob, image["id"], bob_project).json()["status"] == "pending"


def test_only_the_owner_of_a_shared_image_adds_members(live: Live) -> None:
    alice, alice_project = _session(live, "alice")
    bob, bob_project = _session(live, "bob")
    private = _create(live, alice, visibility="private")
    resp = requests.post(f"{live.url}/image/v2/images/{private['id']}/members", json={"member": bob_project},
                         headers=alice, timeout=30)
    assert resp.status_code == 403 and "only shared images have members" in resp.text, resp.text
    shared = _create(live, alice)
    resp = requests.post(f"{live.url}/image/v2/images/{shared['id']}/members", json={"member": alice_project},
                         headers=alice, timeout=30)
    assert resp.status_code == 400 and "member" in resp.json()["error"]["message"], resp.text
    resp = requests.post(f"{live.url}/image/v2/images/{shared['id']}/members", json={"member": bob_project},
                         headers=bob, timeout=30)
    assert resp.status_code == 404, resp.text  # bob cannot see it at all
    resp = requests.get(f"{live.url}/image/v2/images", params={"member_status": "maybe"}, headers=bob,
                        timeout=30)
    assert resp.status_code == 400 and "member_status" in resp.text, resp.text


def test_sdk_shares_an_image(live: Live) -> None:
    """The stock client's calls (openstacksdk image.add_member / update_member / members)."""
    alice, bob = live.sdk("alice"), live.sdk("bob")
    image = alice.image.create_image(name="sdk-shared", disk_format="raw", container_format="bare",
                                     visibility="shared")
    member = alice.image.add_member(image, member_id=bob.current_project_id)
    assert member.status == "pending"
    bob.image.update_member(member, image, status="accepted")
    assert [m.member_id for m in alice.image.members(image)] == [bob.current_project_id]
    assert image.id in [i.id for i in bob.image.images()]


def test_glance_direct_import_stages_then_activates_with_a_task(live: Live) -> None:
    alice, _ = _session(live, "alice")
    info = requests.get(f"{live.url}/image/v2/info/import", headers=alice, timeout=30)
    assert info.json()["import-methods"]["value"] == ["glance-direct"]
    image = _create(live, alice, visibility="private")
    url = f"{live.url}/image/v2/images/{image['id']}"
    # Queued: no data yet, Glance's 204; importing what was never staged is a conflict.
    assert requests.get(f"{url}/file", headers=alice, timeout=30).status_code == 204
    early = requests.post(f"{url}/import", json={"method": {"name": "glance-direct"}}, headers=alice, timeout=30)
    assert early.status_code == 409, early.text

    staged = requests.put(f"{url}/stage", data=RAW, timeout=30,
                          headers={**alice, "Content-Type": "application/octet-stream"})
    assert staged.status_code == 204, staged.text
    assert requests.get(url, headers=alice, timeout=30).json()["status"] == "uploading"
    assert requests.get(f"{url}/file", headers=alice, timeout=30).status_code == 204
    server = requests.post(f"{live.url}/compute/v2.1/servers", headers=alice, timeout=30, json={
        "server": {"name": "vm", "imageRef": image["id"], "flavorRef": "1"}})
    assert server.status_code == 400 and "uploading" in server.text, server.text  # not usable until imported

    done = requests.post(f"{url}/import", json={"method": {"name": "glance-direct"}, "all_stores": True},
                         headers=alice, timeout=30)
    assert done.status_code == 202, done.text
    shown = requests.get(url, headers=alice, timeout=30).json()
    assert (shown["status"], shown["size"]) == ("active", len(RAW))
    assert requests.get(f"{url}/file", headers=alice, timeout=30).content == RAW
    tasks = requests.get(f"{url}/tasks", headers=alice, timeout=30).json()["tasks"]
    assert [(t["status"], t["request_id"], t["input"]["import_req"]["method"]["name"]) for t in tasks] == \
        [("success", done.headers["x-openstack-request-id"], "glance-direct")]
    again = requests.post(f"{url}/import", json={"method": {"name": "glance-direct"}}, headers=alice, timeout=30)
    assert again.status_code == 409, again.text


@pytest.mark.parametrize(("body", "named"), [
    ({"method": {"name": "web-download", "uri": "http://127.0.0.1:9/x.img"}}, "method.name"),
    ({"method": {"name": "copy-image"}}, "method.name"),
    ({"method": {"name": "glance-direct"}, "stores": ["ceph"]}, "stores"),
    ({"method": {}}, "method.name"),
    ({}, "method"),
])
def test_an_import_not_offered_is_refused_naming_the_field(live: Live, body: dict[str, Any], named: str) -> None:
    alice, _ = _session(live, "alice")
    image = _create(live, alice)
    url = f"{live.url}/image/v2/images/{image['id']}"
    requests.put(f"{url}/stage", data=RAW, headers={**alice, "Content-Type": "application/octet-stream"},
                 timeout=30)
    resp = requests.post(f"{url}/import", json=body, headers=alice, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"].startswith(named), resp.text
    assert requests.get(url, headers=alice, timeout=30).json()["status"] == "uploading"


def test_single_store_and_schemas(live: Live) -> None:
    alice, _ = _session(live, "alice")
    assert requests.get(f"{live.url}/image/v2/info/stores", headers=alice, timeout=30).status_code == 404
    names = {"image": "image", "members": "members", "metadefs/namespace": "namespace",
             "metadefs/resource_types": "resource_type_associations", "metadefs/tags": "tags"}
    for path, name in names.items():
        resp = requests.get(f"{live.url}/image/v2/schemas/{path}", headers=alice, timeout=30)
        assert resp.status_code == 200 and resp.json()["name"] == name, resp.text
    assert set(requests.get(f"{live.url}/image/v2/schemas/image", headers=alice, timeout=30).json()["properties"]) \
        >= {"id", "name", "status", "visibility", "disk_format", "tags"}
    assert requests.get(f"{live.url}/image/v2/schemas/nothing", headers=alice, timeout=30).status_code == 404
    assert requests.get(f"{live.url}/image/v2/schemas/image", timeout=30).status_code == 401


def test_the_tasks_api_lists_imports_and_refuses_url_imports(live: Live) -> None:
    alice, _ = _session(live, "alice")
    admin, _ = _session(live, "admin")
    image = _create(live, alice)
    url = f"{live.url}/image/v2/images/{image['id']}"
    requests.put(f"{url}/stage", data=RAW, headers={**alice, "Content-Type": "application/octet-stream"},
                 timeout=30)
    assert requests.post(f"{url}/import", json={"method": {"name": "glance-direct"}}, headers=alice,
                         timeout=30).status_code == 202
    listed = requests.get(f"{live.url}/image/v2/tasks", headers=admin, timeout=30).json()["tasks"]
    mine = [t for t in listed if t["image_id"] == image["id"]]
    assert [t["status"] for t in mine] == ["success"]
    shown = requests.get(f"{live.url}/image/v2/tasks/{mine[0]['id']}", headers=admin, timeout=30)
    assert shown.status_code == 200 and shown.json()["image_id"] == image["id"], shown.text
    assert requests.get(f"{live.url}/image/v2/tasks/nope", headers=admin, timeout=30).status_code == 404
    assert requests.get(f"{live.url}/image/v2/tasks", headers=alice, timeout=30).status_code == 403

    fetch = {"type": "import", "input": {"import_from": "http://127.0.0.1:9/cirros.qcow2",
                                         "import_from_format": "qcow2",
                                         "image_properties": {"disk_format": "qcow2", "container_format": "bare"}}}
    resp = requests.post(f"{live.url}/image/v2/tasks", json=fetch, headers=admin, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["message"].startswith("input.import_from"), resp.text
    resp = requests.post(f"{live.url}/image/v2/tasks", json={**fetch, "type": "convert"}, headers=admin,
                         timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["message"].startswith("type"), resp.text
    assert requests.post(f"{live.url}/image/v2/tasks", json=fetch, headers=alice, timeout=30).status_code == 403
    assert len(requests.get(f"{live.url}/image/v2/tasks", headers=admin, timeout=30).json()["tasks"]) == len(listed)
