"""Server create's adminPass and metadata limits, and the progress field by state, as Nova has them (issue 12),
on a live server with the real engine on the simulated hypervisor."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.spec.passwords import verifies

from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def image(live: Live, qcow2_file: Path) -> str:
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                    "scf-image", "-f", "json")["id"]


def _post(live: Live, server: dict[str, Any]) -> requests.Response:
    return requests.post(f"{live.url}/compute/v2.1/servers", json={"server": server},
                         headers={"X-Auth-Token": live.token("alice")}, timeout=60)


def _get(live: Live, server_id: str) -> dict[str, Any]:
    return requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers={"X-Auth-Token": live.token("alice")},
                        timeout=10).json()["server"]


def _wait(live: Live, server_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    server = _get(live, server_id)
    while not (server["status"] == status and server["OS-EXT-STS:task_state"] is None):
        assert time.monotonic() < deadline, server
        time.sleep(0.2)
        server = _get(live, server_id)
    return server


@pytest.mark.parametrize(("extra", "where"), [
    ({"adminPass": 7}, "server.adminPass"),
    ({"adminPass": "x" * 256}, "server.adminPass"),
    ({"metadata": {"k" * 256: "v"}}, "server.metadata"),
    ({"metadata": {"k": "v" * 256}}, "server.metadata.'k'"),
    ({"metadata": {"k": 1}}, "server.metadata.'k'"),
])
def test_refused_create_fields(live: Live, image: str, extra: dict[str, Any], where: str) -> None:
    before = requests.get(f"{live.url}/compute/v2.1/servers", headers={"X-Auth-Token": live.token("alice")},
                          timeout=10).json()["servers"]
    resp = _post(live, {"name": "scf-refused", "flavorRef": "1", "imageRef": image, **extra})
    assert resp.status_code == 400 and where in resp.json()["badRequest"]["message"], resp.text
    after = requests.get(f"{live.url}/compute/v2.1/servers", headers={"X-Auth-Token": live.token("alice")},
                         timeout=10).json()["servers"]
    assert after == before


def test_admin_password_and_progress(live: Live, image: str) -> None:
    resp = _post(live, {"name": "scf-pass", "flavorRef": "1", "imageRef": image, "adminPass": "testpassword",
                        "metadata": {"k": "v" * 255}})
    assert resp.status_code == 202, resp.text
    created = resp.json()["server"]
    assert created["adminPass"] == "testpassword"
    server = _wait(live, created["id"], "ACTIVE")
    assert server["progress"] == 100
    spec = json.loads((live.layout.domain_dir(f"srv-{created['id']}") / "spec.json").read_text())
    admin = next(u for u in spec["users"] if isinstance(u, dict) and u["name"] == spec["admin_user"])
    assert verifies("testpassword", admin["hashed_passwd"]) and admin["lock_passwd"] is False
    assert "testpassword" not in json.dumps(spec), "only the hash reaches the spec"

    live.osc("alice", "server", "stop", created["id"])
    assert "progress" not in _wait(live, created["id"], "SHUTOFF"), "Nova shows progress when active or building"
    live.osc("alice", "server", "delete", "--wait", created["id"])

    plain = _post(live, {"name": "scf-nopass", "flavorRef": "1", "imageRef": image})
    assert plain.status_code == 202 and plain.json()["server"]["adminPass"] == ""
    _wait(live, plain.json()["server"]["id"], "ACTIVE")
    spec = json.loads((live.layout.domain_dir(f"srv-{plain.json()['server']['id']}") / "spec.json").read_text())
    admin = next(u for u in spec["users"] if isinstance(u, dict) and u["name"] == spec["admin_user"])
    assert "hashed_passwd" not in admin and "lock_passwd" not in admin, "no password without adminPass"
    live.osc("alice", "server", "delete", "--wait", plain.json()["server"]["id"])
