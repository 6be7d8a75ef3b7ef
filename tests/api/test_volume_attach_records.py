"""Cinder's attachment records (issue #12): os-reserve, os-attach, os-begin_detaching, os-roll_detaching, os-detach
and the admin's os-force_detach only record who uses a volume, as Cinder does (connecting the disk is the
caller's job). Nothing of it reaches a server's domain: Nova's attach (test_volumes.py) is the one that does."""

from __future__ import annotations

import uuid

import requests
from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call, _volume, _wait


def _action(live, user: str, volume_id: str, body: dict) -> requests.Response:
    return _call(live, "POST", user, f"/volumes/{volume_id}/action", body)


def _shown(live, volume_id: str) -> dict:
    return _call(live, "GET", "alice", f"/volumes/{volume_id}").json()["volume"]


def test_attach_and_detach_are_records(live) -> None:
    volume = _volume(live, "alice", "recorded")
    server = str(uuid.uuid4())
    attach = {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}
    assert _action(live, "alice", volume["id"], attach).status_code == 202
    shown = _shown(live, volume["id"])
    assert shown["status"] == "in-use"
    [attachment] = shown["attachments"]
    assert attachment["server_id"] == server and attachment["device"] == "/dev/vdb"
    assert attachment["id"] == volume["id"] and attachment["volume_id"] == volume["id"]
    assert attachment["host_name"] is None and uuid.UUID(attachment["attachment_id"])
    # Attached: no second attach (no multiattach), no delete.
    again = _action(live, "alice", volume["id"], attach)
    assert again.status_code == 400 and "in-use" in again.json()["badRequest"]["message"]
    assert _call(live, "DELETE", "alice", f"/volumes/{volume['id']}").status_code == 400

    assert _action(live, "alice", volume["id"], {"os-begin_detaching": {}}).status_code == 202
    assert _shown(live, volume["id"])["status"] == "detaching"
    assert _action(live, "alice", volume["id"], {"os-roll_detaching": {}}).status_code == 202
    assert _shown(live, volume["id"])["status"] == "in-use"
    wrong = _action(live, "alice", volume["id"], {"os-detach": {"attachment_id": str(uuid.uuid4())}})
    assert wrong.status_code == 404 and "attachment" in wrong.json()["itemNotFound"]["message"]
    done = _action(live, "alice", volume["id"], {"os-detach": {"attachment_id": attachment["attachment_id"]}})
    assert done.status_code == 202
    shown = _shown(live, volume["id"])
    assert shown["status"] == "available" and shown["attachments"] == []
    # Nothing attached: begin_detaching is refused in Cinder's words; a detach changes nothing (as Cinder's).
    early = _action(live, "alice", volume["id"], {"os-begin_detaching": {}})
    assert early.status_code == 400
    assert "Volume status must be 'in-use'" in early.json()["badRequest"]["message"]
    assert _action(live, "alice", volume["id"], {"os-detach": None}).status_code == 202
    assert _shown(live, volume["id"])["status"] == "available"


def test_reserved_then_attached_to_a_host(live) -> None:
    volume = _volume(live, "alice", "reserved")
    assert _action(live, "alice", volume["id"], {"os-reserve": None}).status_code == 202
    attach = {"os-attach": {"host_name": "backup-host", "mountpoint": "/mnt/data", "mode": "ro"}}
    assert _action(live, "alice", volume["id"], attach).status_code == 202
    [attachment] = _shown(live, volume["id"])["attachments"]
    assert (attachment["host_name"], attachment["server_id"]) == ("backup-host", None)
    assert _action(live, "alice", volume["id"], {"os-detach": {}}).status_code == 202
    assert _shown(live, volume["id"])["status"] == "available"


def test_attach_refusals(live) -> None:
    volume = _volume(live, "alice", "refusals")
    server = str(uuid.uuid4())
    bad_mode = _action(live, "alice", volume["id"],
                       {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "rx"}})
    assert bad_mode.status_code == 400 and "os-attach.mode" in bad_mode.json()["badRequest"]["message"]
    no_mountpoint = _action(live, "alice", volume["id"], {"os-attach": {"instance_uuid": server}})
    assert no_mountpoint.status_code == 400 and "mountpoint" in no_mountpoint.json()["badRequest"]["message"]
    not_uuid = _action(live, "alice", volume["id"], {"os-attach": {"instance_uuid": "vm1", "mountpoint": "/x"}})
    assert not_uuid.status_code == 400 and "instance_uuid" in not_uuid.json()["badRequest"]["message"]
    # A read-only volume attaches read-only only.
    assert _action(live, "alice", volume["id"], {"os-update_readonly_flag": {"readonly": True}}).status_code == 202
    rw = _action(live, "alice", volume["id"], {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}})
    assert rw.status_code == 400 and "Invalid attaching mode 'rw'" in rw.json()["badRequest"]["message"]
    # Cinder refuses attach and detach in maintenance.
    assert _action(live, "admin", volume["id"], {"os-reset_status": {"status": "maintenance"}}).status_code == 202
    kept = _action(live, "alice", volume["id"],
                   {"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb", "mode": "ro"}})
    assert kept.status_code == 400 and "maintenance" in kept.json()["badRequest"]["message"]
    held = _action(live, "alice", volume["id"], {"os-detach": {}})
    assert held.status_code == 400 and "maintenance" in held.json()["badRequest"]["message"]
    assert _shown(live, volume["id"])["status"] == "maintenance"
    assert _action(live, "bob", volume["id"], {"os-detach": {}}).status_code == 404, "another project's"


def test_force_detach(live) -> None:
    volume = _volume(live, "alice", "forced")
    attach = {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}
    assert _action(live, "alice", volume["id"], attach).status_code == 202
    [attachment] = _shown(live, volume["id"])["attachments"]
    assert _action(live, "admin", volume["id"], {"os-reset_status": {"status": "error"}}).status_code == 202
    forbidden = _action(live, "alice", volume["id"], {"os-force_detach": {"attachment_id": None}})
    assert forbidden.status_code == 403
    unknown = _action(live, "admin", volume["id"], {"os-force_detach": {"attachment_id": str(uuid.uuid4())}})
    assert unknown.status_code == 400
    assert "VolumeAttachmentNotFound" in unknown.json()["badRequest"]["message"]
    forced = _action(live, "admin", volume["id"],
                     {"os-force_detach": {"attachment_id": attachment["attachment_id"], "connector": None}})
    assert forced.status_code == 202
    shown = _shown(live, volume["id"])
    assert shown["status"] == "available" and shown["attachments"] == []


def test_extend_in_use_from_3_42(live) -> None:
    volume = _volume(live, "alice", "grows-attached")
    attach = {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}
    assert _action(live, "alice", volume["id"], attach).status_code == 202
    early = _call(live, "POST", "alice", f"/volumes/{volume['id']}/action", {"os-extend": {"new_size": 2}})
    assert early.status_code == 400 and "must be available to extend" in early.json()["badRequest"]["message"]
    grow = _call(live, "POST", "alice", f"/volumes/{volume['id']}/action", {"os-extend": {"new_size": 2}},
                 version="3.42")
    assert grow.status_code == 202, grow.text
    grown = _wait(live, "alice", f"/volumes/{volume['id']}", "volume", "in-use")
    assert grown["size"] == 2 and len(grown["attachments"]) == 1
