"""Volume actions Tempest found missing (issue #12): os-retype (no migration: one backend), the volume image
metadata actions, a snapshot's progress as os-update_snapshot_status sets it, and a volume from a deactivated
image refused with a 400 naming imageRef."""

from __future__ import annotations

from pathlib import Path

import requests
from apitest import live, qcow2_file  # noqa: F401 (fixtures)
from test_cinder_conformance import _call, _volume, _wait


def _action(live, user: str, volume_id: str, body: dict) -> requests.Response:
    return _call(live, "POST", user, f"/volumes/{volume_id}/action", body)


def test_retype(live) -> None:
    made = _call(live, "POST", "admin", "/types", {"volume_type": {"name": "fast"}})
    assert made.status_code == 200, made.text
    misfit = _call(live, "POST", "admin", "/types",
                   {"volume_type": {"name": "elsewhere", "extra_specs": {"volume_backend_name": "nowhere"}}})
    volume = _volume(live, "alice", "retyped")
    assert volume["volume_type"] == "__DEFAULT__"
    done = _action(live, "alice", volume["id"], {"os-retype": {"new_type": "fast", "migration_policy": "never"}})
    assert done.status_code == 202, done.text
    assert _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]["volume_type"] == "fast"
    same = _action(live, "alice", volume["id"], {"os-retype": {"new_type": made.json()["volume_type"]["id"]}})
    assert same.status_code == 400 and "new_type" in same.json()["badRequest"]["message"]
    unfit = _action(live, "alice", volume["id"], {"os-retype": {"new_type": misfit.json()["volume_type"]["id"]}})
    assert unfit.status_code == 400 and "volume_backend_name" in unfit.text
    assert _action(live, "alice", volume["id"], {"os-retype": {"new_type": "nope"}}).status_code == 404
    bad_policy = _action(live, "alice", volume["id"], {"os-retype": {"new_type": "fast", "migration_policy": "x"}})
    assert bad_policy.status_code == 400 and "migration_policy" in bad_policy.text


def test_image_metadata_actions(live) -> None:
    volume = _volume(live, "alice", "imagemeta")
    given = {"image_id": "5137a025-3c5f-43c1-bc64-5f41270040a5", "image_name": "image", "ramdisk_id": "somedisk"}
    set_ = _action(live, "alice", volume["id"], {"os-set_image_metadata": {"metadata": given}})
    assert set_.status_code == 200 and set_.json() == {"metadata": given}
    shown = _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]
    assert shown["volume_image_metadata"] == given
    unset = _action(live, "alice", volume["id"], {"os-unset_image_metadata": {"key": "ramdisk_id"}})
    assert unset.status_code == 200
    listed = _action(live, "alice", volume["id"], {"os-show_image_metadata": {}})
    assert listed.status_code == 200 and "ramdisk_id" not in listed.json()["metadata"]
    again = _action(live, "alice", volume["id"], {"os-unset_image_metadata": {"key": "ramdisk_id"}})
    assert again.status_code == 404 and "ramdisk_id" in again.text
    long = _action(live, "alice", volume["id"], {"os-set_image_metadata": {"metadata": {"k": "v" * 256}}})
    assert long.status_code == 400 and "metadata" in long.json()["badRequest"]["message"]
    assert _action(live, "bob", volume["id"], {"os-show_image_metadata": {}}).status_code == 404


def test_snapshot_progress(live) -> None:
    volume = _volume(live, "alice", "progress")
    snap = _call(live, "POST", "alice", "/snapshots", {"snapshot": {"volume_id": volume["id"]}}).json()["snapshot"]
    _wait(live, "alice", f"/snapshots/{snap['id']}", "snapshot", "available")
    path = f"/snapshots/{snap['id']}/action"
    assert _call(live, "POST", "admin", path, {"os-reset_status": {"status": "creating"}}).status_code == 202
    update = {"os-update_snapshot_status": {"status": "error", "progress": "80%"}}
    assert _call(live, "POST", "alice", path, update).status_code == 202
    shown = _call(live, "GET", "admin", f"/snapshots/{snap['id']}").json()["snapshot"]
    assert (shown["status"], shown["os-extended-snapshot-attributes:progress"]) == ("error", "80%")


def test_volume_from_a_deactivated_image(live, qcow2_file: Path) -> None:
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "deactivated", "-f", "json")
    headers = {"X-Auth-Token": live.token("alice")}
    done = requests.post(f"{live.url}/image/v2/images/{image['id']}/actions/deactivate", headers=headers, timeout=30)
    assert done.status_code == 204, done.text
    refused = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "imageRef": image["id"]}})
    assert refused.status_code == 400 and "volume.imageRef" in refused.json()["badRequest"]["message"]


def test_snapshot_of_an_attached_volume_needs_force(live) -> None:
    volume = _volume(live, "alice", "attached-ish")
    # Marked in use by an admin, as Cinder's reset-state does: only the record matters to this check.
    assert _call(live, "POST", "admin", f"/volumes/{volume['id']}/action",
                 {"os-reset_status": {"status": "in-use"}}).status_code == 202
    for force in (None, False, "false"):
        body = {"volume_id": volume["id"], **({} if force is None else {"force": force})}
        refused = _call(live, "POST", "alice", "/snapshots", {"snapshot": body})
        assert refused.status_code == 400 and "force" in refused.json()["badRequest"]["message"], refused.text
    bad = _call(live, "POST", "alice", "/snapshots", {"snapshot": {"volume_id": volume["id"], "force": "maybe"}})
    assert bad.status_code == 400 and "snapshot.force" in bad.json()["badRequest"]["message"]
    made = _call(live, "POST", "alice", "/snapshots", {"snapshot": {"volume_id": volume["id"], "force": True}})
    assert made.status_code == 202, made.text
    _wait(live, "alice", f"/snapshots/{made.json()['snapshot']['id']}", "snapshot", "available")
