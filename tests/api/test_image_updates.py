"""Glance image updates (issue #12, found by Tempest): JSON-patch PATCH in both dialects, tags, protected
images, deactivation, hidden images and the empty id. Each refusal names the attribute and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

PATCH_21 = "application/openstack-images-v2.1-json-patch"
PATCH_20 = "application/openstack-images-v2.0-json-patch"


def _headers(live: Live, user: str, **extra: str) -> dict[str, str]:
    return {"X-Auth-Token": live.token(user), **extra}


def _create(live: Live, user: str = "alice", **body: Any) -> dict[str, Any]:
    resp = requests.post(f"{live.url}/image/v2/images", json={"name": "patched", **body},
                         headers=_headers(live, user), timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _patch(live: Live, image_id: str, operations: Any, user: str = "alice",
           media: str = PATCH_21) -> requests.Response:
    return requests.patch(f"{live.url}/image/v2/images/{image_id}", json=operations, timeout=30,
                          headers=_headers(live, user, **{"Content-Type": media}))


def _show(live: Live, image_id: str, user: str = "alice") -> dict[str, Any]:
    return requests.get(f"{live.url}/image/v2/images/{image_id}", headers=_headers(live, user), timeout=30).json()


def test_patch_in_both_dialects_changes_core_attributes_and_properties(live: Live) -> None:
    image = _create(live, os_distro="cirros", min_ram=64)
    done = _patch(live, image["id"], [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "replace", "path": "/min_disk", "value": 2},
        {"op": "remove", "path": "/os_distro"},
        {"op": "replace", "path": "/tags", "value": ["a", "b", "a"]},
    ])
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["name"], body["hw_disk_bus"], body["min_disk"], body["min_ram"], body["tags"]) == \
        ("renamed", "virtio", 2, 64, ["a", "b"])
    assert "os_distro" not in body
    older = _patch(live, image["id"], [{"replace": "/name", "value": "v20"}, {"add": "/k", "value": "v"}],
                   media=PATCH_20)
    assert older.status_code == 200, older.text
    assert (_show(live, image["id"])["name"], _show(live, image["id"])["k"]) == ("v20", "v")


@pytest.mark.parametrize(("operations", "status", "named"), [
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "status"),
    ([{"op": "replace", "path": "/owner", "value": "other"}], 403, "owner"),
    ([{"op": "add", "path": "/os_glance_import_task", "value": "x"}], 403, "os_glance"),
    ([{"op": "add", "path": "/source", "value": "x"}], 403, "source"),
    ([{"op": "remove", "path": "/name"}], 403, "name"),
    ([{"op": "replace", "path": "/visibility", "value": "public"}], 403, "public"),
    ([{"op": "replace", "path": "/visibility", "value": "everyone"}], 400, "visibility"),
    ([{"op": "replace", "path": "/protected", "value": "yes"}], 400, "protected"),
    ([{"op": "replace", "path": "/min_ram", "value": -1}], 400, "min_ram"),
    ([{"op": "replace", "path": "/tags", "value": [1]}], 400, "tags"),
    ([{"op": "replace", "path": "/name", "value": "a/b"}], 400, "name"),
    ([{"op": "add", "path": "/prop", "value": 5}], 400, "extra properties must be strings"),
    ([{"op": "replace", "path": "/missing", "value": "x"}], 409, "missing"),
    ([{"op": "remove", "path": "/missing"}], 409, "missing"),
    ([{"op": "move", "path": "/name"}], 400, "patch[0]"),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400, "patch[0].path"),
    ([{"op": "add", "path": "/x"}], 400, "patch[0].value"),
    ({"op": "add"}, 400, "list of operations"),
    # All or nothing: the first change is valid, the second is refused, neither is applied.
    ([{"op": "replace", "path": "/name", "value": "half"}, {"op": "replace", "path": "/id", "value": "x"}], 403, "id"),
])
def test_a_refused_patch_names_the_attribute_and_changes_nothing(live: Live, operations: Any, status: int,
                                                                  named: str) -> None:
    image = _create(live)
    resp = _patch(live, image["id"], operations)
    assert resp.status_code == status, resp.text
    assert named in resp.json()["error"]["message"]
    after = _show(live, image["id"])
    assert {k: v for k, v in after.items() if k != "updated_at"} == \
        {k: v for k, v in image.items() if k != "updated_at"}


def test_patch_needs_the_patch_media_type_and_the_owner(live: Live) -> None:
    image = _create(live)
    wrong = _patch(live, image["id"], [{"op": "replace", "path": "/name", "value": "x"}], media="application/json")
    assert wrong.status_code == 415 and "Content-Type" in wrong.json()["error"]["message"]
    shared = _create(live, "admin", visibility="public")
    other = _patch(live, shared["id"], [{"op": "replace", "path": "/name", "value": "mine"}], user="bob")
    assert other.status_code == 403
    assert _show(live, shared["id"], "bob")["name"] == "patched"


def test_tags_are_added_once_and_removed(live: Live) -> None:
    image = _create(live)
    url = f"{live.url}/image/v2/images/{image['id']}/tags"
    for _ in range(2):
        assert requests.put(f"{url}/blue", headers=_headers(live, "alice"), timeout=30).status_code == 204
    assert _show(live, image["id"])["tags"] == ["blue"]
    listed = requests.get(f"{live.url}/image/v2/images?tag=blue", headers=_headers(live, "alice"), timeout=30)
    assert [i["id"] for i in listed.json()["images"]] == [image["id"]]
    assert requests.delete(f"{url}/blue", headers=_headers(live, "alice"), timeout=30).status_code == 204
    missing = requests.delete(f"{url}/blue", headers=_headers(live, "alice"), timeout=30)
    assert missing.status_code == 404
    assert requests.put(f"{live.url}/image/v2/images/{image['id']}0/tags/x", headers=_headers(live, "alice"),
                        timeout=30).status_code == 404


def test_a_protected_image_is_not_deleted_until_unprotected(live: Live) -> None:
    image = _create(live, protected=True)
    url = f"{live.url}/image/v2/images/{image['id']}"
    refused = requests.delete(url, headers=_headers(live, "alice"), timeout=30)
    assert refused.status_code == 403 and "protected" in refused.json()["error"]["message"]
    assert _show(live, image["id"])["protected"] is True
    assert _patch(live, image["id"], [{"op": "replace", "path": "/protected", "value": False}]).status_code == 200
    assert requests.delete(url, headers=_headers(live, "alice"), timeout=30).status_code == 204


def test_a_hidden_image_is_listed_only_when_asked_for(live: Live) -> None:
    image = _create(live, os_hidden=True)
    plain = requests.get(f"{live.url}/image/v2/images", headers=_headers(live, "alice"), timeout=30).json()
    hidden = requests.get(f"{live.url}/image/v2/images?os_hidden=true", headers=_headers(live, "alice"),
                          timeout=30).json()
    assert image["id"] not in [i["id"] for i in plain["images"]]
    assert image["id"] in [i["id"] for i in hidden["images"]]


def test_deactivation_is_for_owners_and_admins_and_stops_downloads_for_others(live: Live,
                                                                             qcow2_file: Path) -> None:
    image = _create(live, "admin", visibility="public", disk_format="qcow2", container_format="bare")
    url = f"{live.url}/image/v2/images/{image['id']}"
    upload = requests.put(f"{url}/file", data=qcow2_file.read_bytes(), timeout=60,
                          headers=_headers(live, "admin", **{"Content-Type": "application/octet-stream"}))
    assert upload.status_code == 204, upload.text
    assert requests.post(f"{url}/actions/deactivate", headers=_headers(live, "alice"), timeout=30).status_code == 403
    assert requests.post(f"{url}/actions/deactivate", headers=_headers(live, "admin"), timeout=30).status_code == 204
    assert _show(live, image["id"], "alice")["status"] == "deactivated"
    assert requests.get(f"{url}/file", headers=_headers(live, "alice"), timeout=30).status_code == 403
    assert requests.get(f"{url}/file", headers=_headers(live, "admin"), timeout=30).status_code == 200
    assert requests.post(f"{url}/actions/reactivate", headers=_headers(live, "admin"), timeout=30).status_code == 204
    assert requests.get(f"{url}/file", headers=_headers(live, "alice"), timeout=30).status_code == 200
    assert requests.post(f"{url}/actions/explode", headers=_headers(live, "admin"), timeout=30).status_code == 404
    requests.delete(url, headers=_headers(live, "admin"), timeout=30)
    own = _create(live, "alice", disk_format="qcow2", container_format="bare")
    own_url = f"{live.url}/image/v2/images/{own['id']}"
    assert requests.put(f"{own_url}/file", data=qcow2_file.read_bytes(), timeout=60, headers=_headers(
        live, "alice", **{"Content-Type": "application/octet-stream"})).status_code == 204
    assert requests.post(f"{own_url}/actions/deactivate", headers=_headers(live, "alice"),
                         timeout=30).status_code == 204
    assert requests.get(f"{own_url}/file", headers=_headers(live, "alice"), timeout=30).status_code == 403
    requests.delete(own_url, headers=_headers(live, "alice"), timeout=30)


def test_the_empty_image_id_is_not_found(live: Live) -> None:
    for method in ("GET", "DELETE"):
        resp = requests.request(method, f"{live.url}/image/v2/images/", headers=_headers(live, "alice"), timeout=30)
        assert resp.status_code == 404, (method, resp.text)
    assert requests.get(f"{live.url}/image/v2/images", headers=_headers(live, "alice"), timeout=30).status_code == 200


def test_an_admin_creates_an_image_for_another_project(live: Live) -> None:
    project = requests.get(f"{live.url}/identity/v3/auth/projects", headers=_headers(live, "bob"),
                           timeout=30).json()["projects"][0]["id"]
    image = _create(live, "admin", owner=project)
    assert image["owner"] == project
    assert _patch(live, image["id"], [{"op": "replace", "path": "/name", "value": "bobs"}], user="bob").status_code \
        == 200


def test_an_admin_gives_an_image_to_another_project(live: Live) -> None:
    project = requests.get(f"{live.url}/identity/v3/auth/projects", headers=_headers(live, "bob"),
                           timeout=30).json()["projects"][0]["id"]
    image = _create(live, "admin")
    done = _patch(live, image["id"], [{"op": "replace", "path": "/owner", "value": project}], user="admin")
    assert done.status_code == 200 and done.json()["owner"] == project, done.text
    assert _show(live, image["id"], user="bob")["owner"] == project
    bad = _patch(live, image["id"], [{"op": "replace", "path": "/owner", "value": ""}], user="admin")
    assert bad.status_code == 400 and "owner" in bad.text, bad.text
    assert _show(live, image["id"], user="admin")["owner"] == project


def test_an_image_without_a_name_takes_data(live: Live) -> None:
    """Glance's name is optional (Tempest's admin owner tests create nameless images)."""
    resp = requests.post(f"{live.url}/image/v2/images", json={"disk_format": "raw", "container_format": "bare"},
                         headers=_headers(live, "alice"), timeout=30)
    assert resp.status_code == 201 and resp.json()["name"] is None, resp.text
    image_id = resp.json()["id"]
    data = b"\x00nameless" + bytes(4096)
    resp = requests.put(f"{live.url}/image/v2/images/{image_id}/file", data=data, timeout=30,
                        headers=_headers(live, "alice", **{"Content-Type": "application/octet-stream"}))
    assert resp.status_code == 204, resp.text
    shown = _show(live, image_id)
    assert (shown["name"], shown["status"], shown["size"]) == (None, "active", len(data))
    assert requests.get(f"{live.url}/image/v2/images/{image_id}/file", headers=_headers(live, "alice"),
                        timeout=30).content == data
    assert image_id in [i["id"] for i in requests.get(f"{live.url}/image/v2/images", timeout=30,
                                                      headers=_headers(live, "alice")).json()["images"]]
