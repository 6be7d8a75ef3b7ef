"""Nova's os-instance-actions on a live server (issue 12): the actions accepted requests recorded, by request id,
newest first; refused requests record nothing; another project's server is not found; a deleted server's
readable from 2.21 by its project, until they are older than RETAINED."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import requests

from api.compute import instance_actions
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)


def _headers(live: Live, user: str = "alice", version: str = "2.1") -> dict[str, str]:
    return {"X-Auth-Token": live.token(user), "X-OpenStack-Nova-API-Version": version}


def _wait(live: Live, server_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        server = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live),
                              timeout=10).json()["server"]
        if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
            return
        assert time.monotonic() < deadline, server
        time.sleep(0.2)


def _actions(live: Live, server_id: str, user: str = "alice", version: str = "2.1") -> requests.Response:
    return requests.get(f"{live.url}/compute/v2.1/servers/{server_id}/os-instance-actions",
                        headers=_headers(live, user, version), timeout=10)


def _act(live: Live, server_id: str, body: Any) -> requests.Response:
    return requests.post(f"{live.url}/compute/v2.1/servers/{server_id}/action", json=body, headers=_headers(live),
                         timeout=30)


def test_actions_are_recorded_by_request_id(live: Live, qcow2_file: Path) -> None:
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "ia-image", "-f", "json")["id"]
    created = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=60,
                            json={"server": {"name": "ia-vm", "flavorRef": "1", "imageRef": image}})
    assert created.status_code == 202
    server_id, create_request = created.json()["server"]["id"], created.headers["x-compute-request-id"]
    _wait(live, server_id, "ACTIVE")
    rebooted = _act(live, server_id, {"reboot": {"type": "HARD"}})
    assert rebooted.status_code == 202
    _wait(live, server_id, "ACTIVE")
    assert _act(live, server_id, {"reboot": {"type": "SIDEWAYS"}}).status_code == 400, "refused: not recorded"
    assert _act(live, server_id, {"os-getConsoleOutput": {}}).status_code == 200, "Nova records no read"

    listed = _actions(live, server_id)
    assert listed.status_code == 200
    actions = listed.json()["instanceActions"]
    assert [a["action"] for a in actions] == ["reboot", "create"], "newest first"
    assert actions[0]["request_id"] == rebooted.headers["x-openstack-request-id"]
    assert all(a["instance_uuid"] == server_id and a["message"] is None and "updated_at" not in a for a in actions)
    assert "updated_at" in _actions(live, server_id, version="2.58").json()["instanceActions"][0]

    shown = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}/os-instance-actions/{create_request}",
                         headers=_headers(live), timeout=10)
    assert shown.status_code == 200
    assert shown.json()["instanceAction"]["action"] == "create" and shown.json()["instanceAction"]["events"] == []
    missing = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}/os-instance-actions/req-nope",
                           headers=_headers(live), timeout=10)
    assert missing.status_code == 404 and "req-nope" in missing.text
    assert _actions(live, server_id, user="bob").status_code == 404, "another project's server"

    live.osc("alice", "server", "delete", "--wait", server_id)
    assert _actions(live, server_id).status_code == 404, "before 2.21, as Nova"
    after = _actions(live, server_id, version="2.21")
    assert after.status_code == 200, after.text
    assert [a["action"] for a in after.json()["instanceActions"]] == ["delete", "reboot", "create"]
    assert _actions(live, server_id, user="bob", version="2.21").status_code == 404, "another project's"
    assert _actions(live, "no-such-server", version="2.21").status_code == 404
    with sqlite3.connect(live.layout.state_db) as db:
        # the delete a week and a second ago: the next destroyed server's domain drops them
        db.execute("UPDATE api_instance_actions SET data = json_set(data, '$.start_time', ?) "
                   "WHERE json_extract(data, '$.action') = 'delete' AND data LIKE ?",
                   (time.time() - instance_actions.RETAINED - 1, f"%{server_id}%"))
    other = requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=60,
                          json={"server": {"name": "ia-vm2", "flavorRef": "1", "imageRef": image}})
    assert other.status_code == 202, other.text
    other_id = other.json()["server"]["id"]
    _wait(live, other_id, "ACTIVE")
    live.osc("alice", "server", "delete", "--wait", other_id)
    assert _actions(live, server_id, version="2.21").status_code == 404
    with sqlite3.connect(live.layout.state_db) as db:
        left = db.execute("SELECT COUNT(*) FROM api_instance_actions WHERE data LIKE ?", (f"%{server_id}%",))
        assert left.fetchone()[0] == 0, "a deleted server's actions go after RETAINED"
    assert [a["action"] for a in _actions(live, other_id, version="2.21").json()["instanceActions"]] == [
        "delete", "create"]
