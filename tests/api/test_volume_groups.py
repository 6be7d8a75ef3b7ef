"""Cinder's generic volume groups (issue #12): microversion 3.13, volumes created in a group of their type,
update (name, add and remove volumes), a group copied from another (3.14), reset_status (3.20, admin), delete
with or without its volumes; bad input names its field."""

from __future__ import annotations

import time
from typing import Any

from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call, _wait

V = "3.20"


def _setup(live, suffix: str) -> tuple[str, str]:
    vtype = _call(live, "POST", "admin", "/types", {"volume_type": {"name": f"grouped-{suffix}"}}).json()
    gtype = _call(live, "POST", "admin", "/group_types", {"group_type": {"name": f"gt-{suffix}"}}, version=V).json()
    return vtype["volume_type"]["id"], gtype["group_type"]["id"]


def _group(live, gtype: str, vtype: str, name: str) -> dict[str, Any]:
    made = _call(live, "POST", "alice", "/groups",
                 {"group": {"group_type": gtype, "volume_types": [vtype], "name": name}}, version=V)
    assert made.status_code == 202, made.text
    return made.json()["group"]


def _member(live, group_id: str, vtype: str) -> dict[str, Any]:
    made = _call(live, "POST", "alice", "/volumes",
                 {"volume": {"size": 1, "volume_type": vtype, "group_id": group_id}}, version=V)
    assert made.status_code == 202, made.text
    assert made.json()["volume"]["group_id"] == group_id
    return _wait(live, "alice", f"/volumes/{made.json()['volume']['id']}", "volume", "available")


def _in_group(live, group_id: str) -> list[str]:
    listed = _call(live, "GET", "alice", "/volumes/detail", version=V).json()["volumes"]
    return [v["id"] for v in listed if v["group_id"] == group_id]


def test_group_lifecycle(live) -> None:
    vtype, gtype = _setup(live, "a")
    assert _call(live, "GET", "alice", "/groups").status_code == 404, "3.13 and later only"
    group = _group(live, gtype, vtype, "g1")
    shown = _call(live, "GET", "alice", f"/groups/{group['id']}", version=V).json()["group"]
    assert (shown["status"], shown["group_type"], shown["volume_types"]) == ("available", gtype, [vtype])
    first, second = _member(live, group["id"], vtype), _member(live, group["id"], vtype)
    assert sorted(_in_group(live, group["id"])) == sorted([first["id"], second["id"]])

    path = f"/groups/{group['id']}"
    update = {"group": {"name": "renamed", "remove_volumes": second["id"]}}
    assert _call(live, "PUT", "alice", path, update, version=V).status_code == 202
    assert _call(live, "GET", "alice", path, version=V).json()["group"]["name"] == "renamed"
    assert _in_group(live, group["id"]) == [first["id"]]
    assert _call(live, "PUT", "alice", path, {"group": {"add_volumes": second["id"]}}, version=V).status_code == 202
    assert len(_in_group(live, group["id"])) == 2

    copied = _call(live, "POST", "alice", "/groups/action",
                   {"create-from-src": {"source_group_id": group["id"], "name": "copy"}}, version=V)
    assert copied.status_code == 202, copied.text
    copy_id = copied.json()["group"]["id"]
    copies = _in_group(live, copy_id)
    assert len(copies) == 2
    for volume_id in copies:
        assert _wait(live, "alice", f"/volumes/{volume_id}", "volume", "available")["source_volid"] in (
            first["id"], second["id"])

    for status in ("creating", "error", "available"):
        reset = {"reset_status": {"status": status}}
        assert _call(live, "POST", "admin", f"{path}/action", reset, version=V).status_code == 202
        assert _call(live, "GET", "alice", path, version=V).json()["group"]["status"] == status
    assert _call(live, "POST", "alice", f"{path}/action", {"reset_status": {"status": "error"}},
                 version=V).status_code == 403

    kept = _call(live, "POST", "alice", f"{path}/action", {"delete": {"delete-volumes": False}}, version=V)
    assert kept.status_code == 400 and "delete-volumes" in kept.json()["badRequest"]["message"]
    for group_id in (group["id"], copy_id):
        done = _call(live, "POST", "alice", f"/groups/{group_id}/action", {"delete": {"delete-volumes": True}},
                     version=V)
        assert done.status_code == 202, done.text
    assert _call(live, "GET", "alice", "/groups/detail", version=V).json()["groups"] == []
    deadline = time.monotonic() + 120
    while _call(live, "GET", "alice", f"/volumes/{first['id']}").status_code != 404:
        assert time.monotonic() < deadline, "the group's volumes are deleted with it"
        time.sleep(0.2)


def test_group_refusals(live) -> None:
    vtype, gtype = _setup(live, "b")
    other_type = _call(live, "POST", "admin", "/types", {"volume_type": {"name": "ungrouped"}}).json()
    group = _group(live, gtype, vtype, "g2")
    wrong_type = _call(live, "POST", "alice", "/volumes", {"volume": {
        "size": 1, "volume_type": other_type["volume_type"]["id"], "group_id": group["id"]}}, version=V)
    assert wrong_type.status_code == 400 and "volume_type" in wrong_type.json()["badRequest"]["message"]
    old = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "group_id": group["id"]}})
    assert old.status_code == 400 and "group_id" in old.json()["badRequest"]["message"]
    missing = _call(live, "POST", "alice", "/groups", {"group": {"group_type": gtype}}, version=V)
    assert missing.status_code == 400 and "volume_types" in missing.json()["badRequest"]["message"]
    assert _call(live, "GET", "bob", f"/groups/{group['id']}", version=V).status_code == 404
    empty = _call(live, "PUT", "alice", f"/groups/{group['id']}", {"group": {}}, version=V)
    assert empty.status_code == 400 and "group" in empty.json()["badRequest"]["message"]
    stranger = _call(live, "PUT", "alice", f"/groups/{group['id']}", {"group": {"remove_volumes": "nope"}}, version=V)
    assert stranger.status_code == 400 and "remove_volumes" in stranger.json()["badRequest"]["message"]


def test_group_snapshots(live) -> None:
    vtype, gtype = _setup(live, "c")
    group = _group(live, gtype, vtype, "g3")
    member = _member(live, group["id"], vtype)
    assert _call(live, "GET", "alice", "/group_snapshots", version="3.13").status_code == 404, "3.14 and later"
    made = _call(live, "POST", "alice", "/group_snapshots", {"group_snapshot": {"group_id": group["id"], "name": "gs"}},
                 version=V)
    assert made.status_code == 202, made.text
    gsnap = made.json()["group_snapshot"]
    assert gsnap["group_type_id"] == gtype
    path = f"/group_snapshots/{gsnap['id']}"
    deadline = time.monotonic() + 120
    while _call(live, "GET", "alice", path, version=V).json()["group_snapshot"]["status"] != "available":
        assert time.monotonic() < deadline, "the group snapshot never became available"
        time.sleep(0.2)
    snaps = _call(live, "GET", "alice", "/snapshots/detail").json()["snapshots"]
    assert [s["volume_id"] for s in snaps if s["volume_id"] == member["id"]] == [member["id"]]
    listed = _call(live, "GET", "alice", "/group_snapshots/detail", version=V).json()["group_snapshots"]
    assert [(g["id"], g["group_id"]) for g in listed] == [(gsnap["id"], group["id"])]

    copied = _call(live, "POST", "alice", "/groups/action",
                   {"create-from-src": {"group_snapshot_id": gsnap["id"], "name": "from-snap"}}, version=V)
    assert copied.status_code == 202, copied.text
    copies = _in_group(live, copied.json()["group"]["id"])
    assert len(copies) == 1
    assert _wait(live, "alice", f"/volumes/{copies[0]}", "volume", "available")["snapshot_id"] is not None

    blocked = _call(live, "POST", "alice", f"/groups/{group['id']}/action", {"delete": {"delete-volumes": True}},
                    version=V)
    assert blocked.status_code == 400 and "group snapshots" in blocked.text
    for status in ("creating", "error", "available"):
        reset = {"reset_status": {"status": status}}
        assert _call(live, "POST", "admin", f"{path}/action", reset, version=V).status_code == 202
        assert _call(live, "GET", "alice", path, version=V).json()["group_snapshot"]["status"] == status
    assert _call(live, "POST", "admin", f"{path}/action", {"reset_status": {"status": "x"}},
                 version=V).status_code == 400
    assert _call(live, "GET", "bob", path, version=V).status_code == 404
    assert _call(live, "DELETE", "alice", path, version=V).status_code == 202
    assert _call(live, "GET", "alice", path, version=V).status_code == 404
    both = _call(live, "POST", "alice", "/groups/action", {"create-from-src": {}}, version=V)
    assert both.status_code == 400 and "create-from-src" in both.json()["badRequest"]["message"]
