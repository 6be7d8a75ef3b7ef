"""Cinder's user messages: a volume or snapshot operation that fails says why in a message of its project
(GET/DELETE /volume/v3/messages[/{id}], microversion 3.3), not in a `fault` member Cinder does not have."""

from __future__ import annotations

from typing import Any

import requests
from apitest import live  # noqa: F401 (fixture)
from test_volumes import _post, _volume, _wait

from api.volume.messages import REASON_LIMIT, clean_reason
from provisioner.layout import POOL_NAME
from provisioner.provider.simulator import transaction

V33 = {"OpenStack-API-Version": "volume 3.3"}


def _call(live, method: str, user: str, path: str, version: dict[str, str] = V33) -> requests.Response:
    return requests.request(method, f"{live.url}/volume/v3{path}", timeout=10,
                            headers={"X-Auth-Token": live.token(user), **version})


def _failed_volume(live) -> dict[str, Any]:
    """A volume whose create really fails: a copy of a volume whose libvirt volume was removed behind the engine's
    back (Terraform's apply cannot read it)."""
    source = _volume(live, "alice", "msgsrc")
    with transaction(live.layout.simulator_uri) as session:
        session.conn.storagePoolLookupByName(POOL_NAME).storageVolLookupByName(f"vol-{source['id']}.qcow2").delete(0)
    created = _post(live, "alice", "/volume/v3/volumes", {"volume": {"source_volid": source["id"], "name": "msgcopy"}})
    assert created.status_code == 202, created.text
    return _wait(live, "alice", f"/volume/v3/volumes/{created.json()['volume']['id']}", "volume", "error")


def test_failed_create_is_a_user_message(live) -> None:
    failed = _failed_volume(live)
    assert "fault" not in failed, "Cinder has no fault member (Tempest's schemas refuse it)"

    listed = _call(live, "GET", "alice", "/messages")
    assert listed.status_code == 200, listed.text
    mine = [m for m in listed.json()["messages"] if m["resource_uuid"] == failed["id"]]
    assert len(mine) == 1, listed.json()
    message = mine[0]
    assert message["resource_type"] == "VOLUME" and message["message_level"] == "ERROR"
    assert message["event_id"] == "VOLUME_VOLUME_001_001"
    assert message["user_message"].startswith("schedule allocate volume: ")
    assert len(message["user_message"]) <= len("schedule allocate volume: ") + REASON_LIMIT
    assert str(live.layout.root) not in message["user_message"], "no host path reaches a user"
    assert message["request_id"].startswith("req-") and message["guaranteed_until"] > message["created_at"]
    assert {link["rel"] for link in message["links"]} == {"self", "bookmark"}

    shown = _call(live, "GET", "alice", f"/messages/{message['id']}")
    assert shown.status_code == 200 and shown.json() == {"message": message}

    # Another project's message is as missing as one that never was; an admin sees every project's.
    assert _call(live, "GET", "bob", f"/messages/{message['id']}").status_code == 404
    assert _call(live, "DELETE", "bob", f"/messages/{message['id']}").status_code == 404
    assert message["id"] not in {m["id"] for m in _call(live, "GET", "bob", "/messages").json()["messages"]}
    assert message["id"] in {m["id"] for m in _call(live, "GET", "admin", "/messages").json()["messages"]}

    # Before 3.3 there are no messages, as in Cinder.
    assert _call(live, "GET", "alice", "/messages", version={}).status_code == 404
    assert _call(live, "GET", "alice", f"/messages/{message['id']}",
                 version={"OpenStack-API-Version": "volume 3.2"}).status_code == 404

    deleted = _call(live, "DELETE", "alice", f"/messages/{message['id']}")
    assert deleted.status_code == 204, deleted.text
    assert _call(live, "GET", "alice", f"/messages/{message['id']}").status_code == 404
    assert _call(live, "DELETE", "alice", f"/messages/{message['id']}").status_code == 404


def test_failed_snapshot_is_a_user_message(live) -> None:
    volume = _volume(live, "alice", "msgsnapsrc")
    with transaction(live.layout.simulator_uri) as session:
        session.conn.storagePoolLookupByName(POOL_NAME).storageVolLookupByName(f"vol-{volume['id']}.qcow2").delete(0)
    snap = _post(live, "alice", "/volume/v3/snapshots", {"snapshot": {"volume_id": volume["id"], "name": "msgbad"}})
    assert snap.status_code == 202, snap.text
    failed = _wait(live, "alice", f"/volume/v3/snapshots/{snap.json()['snapshot']['id']}", "snapshot", "error")
    assert "fault" not in failed
    listed = _call(live, "GET", "alice", "/messages").json()["messages"]
    mine = [m for m in listed if m["resource_uuid"] == failed["id"]]
    assert [(m["resource_type"], m["user_message"].split(":")[0]) for m in mine] == [("SNAPSHOT", "create snapshot")]
    assert "not readable" in mine[0]["user_message"], "the reason, cut"
    assert str(live.layout.root) not in mine[0]["user_message"]


def test_clean_reason_cuts_host_paths_and_length() -> None:
    reason = "Error: cannot read '/var/lib/provisioner/pool/vol-1.qcow2'\n  at qemu:///system, see /tmp/x/log.txt"
    assert clean_reason(reason) == "Error: cannot read '…/vol-1.qcow2' at qemu:///system, see …/log.txt"
    long = clean_reason("x" * 1000)
    assert len(long) == REASON_LIMIT and long.endswith("…")
