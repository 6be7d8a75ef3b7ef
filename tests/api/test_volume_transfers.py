"""Cinder's volume transfers (issue #12): a project offers an available volume, another takes it (with its
snapshots unless no_snapshots) by id and auth key; a withdrawn offer frees the volume. Both paths: the legacy
/os-volume-transfer and /volume-transfers (microversion 3.55, 3.57 with the projects)."""

from __future__ import annotations

from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call, _volume, _wait


def _offer(live, volume_id: str, path: str = "/os-volume-transfer", version: str | None = None, **extra):
    return _call(live, "POST", "alice", path, {"transfer": {"volume_id": volume_id, "name": "gift", **extra}},
                 version=version)


def test_offer_and_accept(live) -> None:
    volume = _volume(live, "alice", "given")
    snap = _call(live, "POST", "alice", "/snapshots", {"snapshot": {"volume_id": volume["id"]}}).json()["snapshot"]
    _wait(live, "alice", f"/snapshots/{snap['id']}", "snapshot", "available")
    offered = _offer(live, volume["id"])
    assert offered.status_code == 202, offered.text
    transfer = offered.json()["transfer"]
    assert set(transfer) == {"id", "name", "volume_id", "created_at", "links", "auth_key"}
    assert _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]["status"] == "awaiting-transfer"
    assert _offer(live, volume["id"]).status_code == 400, "no longer available"
    shown = _call(live, "GET", "alice", f"/os-volume-transfer/{transfer['id']}").json()["transfer"]
    assert shown["volume_id"] == volume["id"] and "auth_key" not in shown
    assert [t["id"] for t in _call(live, "GET", "alice", "/os-volume-transfer").json()["transfers"]] == \
        [transfer["id"]]
    assert _call(live, "GET", "bob", f"/os-volume-transfer/{transfer['id']}").status_code == 404
    assert _call(live, "GET", "bob", "/os-volume-transfer/detail").json()["transfers"] == []

    wrong = _call(live, "POST", "bob", f"/os-volume-transfer/{transfer['id']}/accept",
                  {"accept": {"auth_key": "0" * 16}})
    assert wrong.status_code == 400 and "auth_key" in wrong.json()["badRequest"]["message"]
    accepted = _call(live, "POST", "bob", f"/os-volume-transfer/{transfer['id']}/accept",
                     {"accept": {"auth_key": transfer["auth_key"]}})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["transfer"]["volume_id"] == volume["id"]
    taken = _call(live, "GET", "bob", f"/volumes/{volume['id']}").json()["volume"]
    assert taken["status"] == "available" and taken["os-vol-tenant-attr:tenant_id"] != volume[
        "os-vol-tenant-attr:tenant_id"]
    assert _call(live, "GET", "alice", f"/volumes/{volume['id']}").status_code == 404
    assert _call(live, "GET", "bob", f"/snapshots/{snap['id']}").status_code == 200, "its snapshot went with it"
    assert _call(live, "GET", "alice", f"/os-volume-transfer/{transfer['id']}").status_code == 404


def test_withdraw_and_microversions(live) -> None:
    volume = _volume(live, "alice", "kept")
    assert _offer(live, volume["id"], "/volume-transfers").status_code == 404, "3.55 and later only"
    offered = _offer(live, volume["id"], "/volume-transfers", version="3.57", no_snapshots=True)
    assert offered.status_code == 202, offered.text
    transfer = offered.json()["transfer"]
    assert transfer["no_snapshots"] is True and transfer["accepted"] is False
    assert transfer["source_project_id"] == volume["os-vol-tenant-attr:tenant_id"]
    assert transfer["links"][0]["href"].endswith(f"/volume-transfers/{transfer['id']}")
    brief = _call(live, "GET", "alice", "/volume-transfers", version="3.55").json()["transfers"]
    assert brief and set(brief[0]) == {"id", "name", "volume_id", "links"}
    assert _call(live, "DELETE", "bob", f"/volume-transfers/{transfer['id']}", version="3.55").status_code == 404
    assert _call(live, "DELETE", "alice", f"/volume-transfers/{transfer['id']}", version="3.55").status_code == 202
    assert _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]["status"] == "available"
    gone = _call(live, "POST", "bob", f"/os-volume-transfer/{transfer['id']}/accept",
                 {"accept": {"auth_key": transfer["auth_key"]}})
    assert gone.status_code == 404


def test_refusals_name_the_field(live) -> None:
    missing = _call(live, "POST", "alice", "/os-volume-transfer", {"transfer": {"name": "x"}})
    assert missing.status_code == 400 and "volume_id" in missing.json()["badRequest"]["message"]
    assert _offer(live, "no-such-volume").status_code == 404
    other = _volume(live, "bob", "not alice's")
    assert _offer(live, other["id"]).status_code == 404
    no_key = _call(live, "POST", "bob", "/os-volume-transfer/x/accept", {"accept": {}})
    assert no_key.status_code == 400 and "auth_key" in no_key.json()["badRequest"]["message"]
