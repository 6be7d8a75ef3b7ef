"""Nova's volume face (issue #12): the os-volumes and os-snapshots proxies over this API's Cinder (gone at
2.36), and os-assisted-volume-snapshots. Volumes are applied on the simulated hypervisor through the real
engine."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

V236 = {"OpenStack-API-Version": "compute 2.36"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _wait(live: Live, path: str, key: str, status: str | None) -> dict[str, Any]:
    """Poll until the item has `status` (None: until it is gone, 404)."""
    body: Any = None
    for _ in range(600):  # bounded: 600 polls of 0.2 s
        resp = _call(live, "GET", path)
        if status is None and resp.status_code == 404:
            return {}
        body = resp.json()
        if resp.status_code == 200 and body[key]["status"] == status:
            return body[key]
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached {status}: {body}")


def test_volume_and_snapshot_proxies(live: Live) -> None:
    created = _call(live, "POST", "/os-volumes", {"volume": {"size": "1", "display_name": "proxied",
                                                             "display_description": "d", "metadata": {"k": "v"}}})
    assert created.status_code == 200, created.text
    volume = created.json()["volume"]
    assert volume["displayName"] == "proxied" and volume["displayDescription"] == "d" and volume["size"] == 1
    assert volume["attachments"] == [{}], "Nova's form of no attachment"
    shown = _wait(live, f"/os-volumes/{volume['id']}", "volume", "available")
    assert shown["metadata"] == {"k": "v"} and shown["volumeType"] == "__DEFAULT__"
    cinder = requests.get(f"{live.url}/volume/v3/volumes/{volume['id']}", timeout=30,
                          headers={"X-Auth-Token": live.token("alice")}).json()["volume"]
    assert cinder["name"] == "proxied" and cinder["status"] == "available", "the same volume in Cinder"
    for path in ("/os-volumes", "/os-volumes/detail"):
        assert volume["id"] in [v["id"] for v in _call(live, "GET", path).json()["volumes"]]
    assert _call(live, "GET", "/os-volumes?limit=0").json()["volumes"] == []
    assert _call(live, "GET", f"/os-volumes/{volume['id']}", user="bob").status_code == 404, "another project's"
    assert volume["id"] not in [v["id"] for v in _call(live, "GET", "/os-volumes", user="bob").json()["volumes"]]

    snap = _call(live, "POST", "/os-snapshots", {"snapshot": {"volume_id": volume["id"], "display_name": "s1"}})
    assert snap.status_code == 200, snap.text
    snapshot = snap.json()["snapshot"]
    assert snapshot["volumeId"] == volume["id"] and snapshot["displayName"] == "s1"
    _wait(live, f"/os-snapshots/{snapshot['id']}", "snapshot", "available")
    for path in ("/os-snapshots", "/os-snapshots/detail"):
        assert snapshot["id"] in [s["id"] for s in _call(live, "GET", path).json()["snapshots"]]
    refused = _call(live, "DELETE", f"/os-volumes/{volume['id']}")
    assert refused.status_code == 400 and "snapshots" in refused.json()["badRequest"]["message"]
    assert _call(live, "DELETE", f"/os-snapshots/{snapshot['id']}").status_code == 202
    _wait(live, f"/os-snapshots/{snapshot['id']}", "snapshot", None)
    assert _call(live, "DELETE", f"/os-volumes/{volume['id']}").status_code == 202
    _wait(live, f"/os-volumes/{volume['id']}", "volume", None)
    assert _call(live, "DELETE", f"/os-volumes/{volume['id']}").status_code == 404
    for path in ("/os-volumes/", "/os-snapshots/"):
        for method in ("GET", "DELETE"):
            assert _call(live, method, path).status_code == 404, "an empty id: no such item, not the collection"


@pytest.mark.parametrize("path", ["/os-volumes", "/os-volumes/detail", "/os-snapshots", "/os-snapshots/detail"])
def test_proxies_are_gone_at_2_36(live: Live, path: str) -> None:
    assert _call(live, "GET", path).status_code == 200
    assert _call(live, "GET", path, headers=V236).status_code == 404
    assert _call(live, "POST", "/os-volumes", {"volume": {"size": 1}}, headers=V236).status_code == 404


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"volume": {"size": "#$%"}}, "volume.size", ""),
    ({"volume": {"size": ""}}, "volume.size", ""),
    ({"volume": {"size": "0"}}, "volume.size", "greater than 0"),
    ({"volume": {"size": 0}}, "volume.size", ""),
    ({"volume": {"display_name": "no size"}}, "volume.size", ""),
    ({"volume": {"size": 1, "name": "cinder's field"}}, "volume", "unknown field 'name'"),
    ({"volume": {"size": 1, "snapshot_id": "no-such-snapshot"}}, "", "could not be found"),
])
def test_bad_volume_creates_are_refused(live: Live, body: Any, field: str, reason: str) -> None:
    resp = _call(live, "POST", "/os-volumes", body)
    assert resp.status_code in (400, 404), resp.text
    message = next(iter(resp.json().values()))["message"]
    assert field in message and reason in message


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"snapshot": {"display_name": "x"}}, "snapshot.volume_id", "is required"),
    ({"snapshot": {"volume_id": 5}}, "snapshot.volume_id", "is not a string"),
    ({"snapshot": {"volume_id": "v", "force": "maybe"}}, "snapshot.force", "use one of"),
    ({"snapshot": {"volume_id": "v", "display_name": "n" * 256}}, "snapshot.display_name", "longer than 255"),
    ({"snapshot": {"volume_id": "v", "name": "cinder's field"}}, "snapshot", "unknown field 'name'"),
    ({"volume": {"volume_id": "v"}}, "body", "unknown field 'volume'"),
    ({"snapshot": {"volume_id": "no-such-volume"}}, "", "could not be found"),
])
def test_bad_snapshot_creates_are_refused(live: Live, body: Any, field: str, reason: str) -> None:
    resp = _call(live, "POST", "/os-snapshots", body)
    assert resp.status_code == (404 if not field else 400), resp.text
    message = next(iter(resp.json().values()))["message"]
    assert field in message and reason in message, message


@pytest.mark.parametrize("path", ["/os-volumes/no-such-volume", "/os-snapshots/no-such-snapshot"])
def test_a_missing_item_is_a_404_to_show_and_delete(live: Live, path: str) -> None:
    for method in ("GET", "DELETE"):
        resp = _call(live, method, path)
        assert resp.status_code == 404 and "could not be found" in resp.json()["itemNotFound"]["message"], resp.text


def test_assisted_snapshots_need_an_attached_volume(live: Live) -> None:
    created = _call(live, "POST", "/os-volumes", {"volume": {"size": 1}}).json()["volume"]
    _wait(live, f"/os-volumes/{created['id']}", "volume", "available")
    body = {"snapshot": {"volume_id": created["id"],
                         "create_info": {"snapshot_id": "s", "type": "qcow2", "new_file": "f"}}}
    assert _call(live, "POST", "/os-assisted-volume-snapshots", body).status_code == 403, "admin or service"
    detached = _call(live, "POST", "/os-assisted-volume-snapshots", body, user="admin")
    assert detached.status_code == 400 and "snapshot.volume_id" in detached.json()["badRequest"]["message"]
    bad_type = {"snapshot": {**body["snapshot"], "create_info": {**body["snapshot"]["create_info"], "type": "raw"}}}
    refused = _call(live, "POST", "/os-assisted-volume-snapshots", bad_type, user="admin")
    assert refused.status_code == 400 and "create_info.type" in refused.json()["badRequest"]["message"]
    info = json.dumps({"volume_id": created["id"]})
    deleted = _call(live, "DELETE", f"/os-assisted-volume-snapshots/x?delete_info={info}", user="admin")
    assert deleted.status_code == 400 and "delete_info.volume_id" in deleted.json()["badRequest"]["message"]
    assert _call(live, "DELETE", "/os-assisted-volume-snapshots/x", user="admin").status_code == 400
    assert _call(live, "DELETE", "/os-assisted-volume-snapshots/x?delete_info=[", user="admin").status_code == 400
