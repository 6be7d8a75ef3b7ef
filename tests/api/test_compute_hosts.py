"""Nova's os-hosts (issue #12): the host entries of the services, a compute host's resources and usage per
project, and the refusals (admin only, gone at 2.43, no power actions or maintenance mode: 409 where Nova's
libvirt driver answers 501, this API answering no 5xx that is not its fault)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

V243 = {"OpenStack-API-Version": "compute 2.43"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "admin",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


@pytest.fixture(scope="module")
def server(live: Live, qcow2_file: Path) -> dict[str, Any]:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "hosts",
                     "-f", "json")["id"]
    made = _call(live, "POST", "/servers", {"server": {"name": "on-host", "imageRef": image, "flavorRef": "1",
                                                       "networks": "none"}}, user="alice")
    assert made.status_code == 202, made.text
    return made.json()["server"]


def test_hosts_list_and_zone_filter(live: Live) -> None:
    hosts = _call(live, "GET", "/os-hosts").json()["hosts"]
    assert sorted(h["service"] for h in hosts) == ["compute", "conductor", "scheduler"]
    compute = next(h for h in hosts if h["service"] == "compute")
    assert compute["zone"] == "nova"
    assert _call(live, "GET", "/os-hosts?zone=nova").json()["hosts"] == [compute]
    assert len(_call(live, "GET", "/os-hosts?zone=").json()["hosts"]) == 3
    assert _call(live, "GET", "/os-hosts?zone=xxx").json()["hosts"] == []
    assert _call(live, "GET", "/os-hosts", user="alice").status_code == 403
    assert _call(live, "GET", "/os-hosts", headers=V243).status_code == 404


def test_host_detail_counts_the_projects_servers(live: Live, server: dict[str, Any]) -> None:
    host = next(h for h in _call(live, "GET", "/os-hosts").json()["hosts"] if h["service"] == "compute")["host_name"]
    rows = [r["resource"] for r in _call(live, "GET", f"/os-hosts/{host}").json()["host"]]
    assert [r["project"] for r in rows[:3]] == ["(total)", "(used_now)", "(used_max)"]
    assert rows[0]["cpu"] >= 1 and rows[0]["memory_mb"] > 0
    flavor = _call(live, "GET", "/flavors/1").json()["flavor"]
    (project,) = rows[3:]
    assert (project["cpu"], project["memory_mb"], project["disk_gb"]) == (flavor["vcpus"], flavor["ram"],
                                                                          flavor["disk"])
    assert rows[1]["cpu"] == flavor["vcpus"] and all(r["host"] == host for r in rows)
    assert _call(live, "GET", "/os-hosts/no-such-host").status_code == 404
    assert _call(live, "GET", f"/os-hosts/{host}", user="alice").status_code == 403
    _call(live, "DELETE", f"/servers/{server['id']}", user="alice")
    for _ in range(300):  # bounded: the server is gone when its domain is
        if _call(live, "GET", f"/servers/{server['id']}", user="alice").status_code == 404:
            break
        time.sleep(0.2)
    rows = [r["resource"] for r in _call(live, "GET", f"/os-hosts/{host}").json()["host"]]
    assert len(rows) == 3 and rows[1]["cpu"] == 0


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"status": "enable"}, 409, None),
    ({"maintenance_mode": "disable"}, 409, None),
    ({"status": "invalid"}, 400, "status"),
    ({"maintenance_mode": "on"}, 400, "maintenance_mode"),
    ({"status": None, "maintenance_mode": None}, 400, "status"),
    ({}, 400, None),
    ({"status": "enable", "other": 1}, 400, "other"),
])
def test_host_update_refusals(live: Live, body: dict[str, Any], status: int, field: str | None) -> None:
    host = _call(live, "GET", "/os-hosts").json()["hosts"][0]["host_name"]
    resp = _call(live, "PUT", f"/os-hosts/{host}", body)
    assert resp.status_code == status, resp.text
    if status == 400:
        assert field is None or field in resp.json()["badRequest"]["message"]
    else:
        assert "does not implement" in resp.json()["conflictingRequest"]["message"]
    assert _call(live, "PUT", "/os-hosts/no-such-host", {"status": "enable"}).status_code == 404
    assert _call(live, "PUT", f"/os-hosts/{host}", {"status": "enable"}, user="alice").status_code == 403


@pytest.mark.parametrize("action", ["startup", "shutdown", "reboot"])
def test_host_power_actions_are_not_implemented(live: Live, action: str) -> None:
    host = _call(live, "GET", "/os-hosts").json()["hosts"][0]["host_name"]
    assert _call(live, "GET", f"/os-hosts/{host}/{action}").status_code == 409
    assert _call(live, "GET", f"/os-hosts/no-such-host/{action}").status_code == 404
    assert _call(live, "GET", f"/os-hosts/{host}/{action}", user="alice").status_code == 403
    assert _call(live, "GET", f"/os-hosts/{host}/explode").status_code == 404
