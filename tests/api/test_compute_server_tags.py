"""A server's tags (2.26), its os-server-password (always empty: no metadata service), diagnostics and external
events through the served API, on a server built by the real engine on the simulated hypervisor (issue #12)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)

V226 = {"OpenStack-API-Version": "compute 2.26"}


def _call(live: Live, method: str, path: str, body: Any = None, headers: dict[str, str] | None = V226,
          user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


@pytest.fixture(scope="module")
def server_id(live: Live, qcow2_file: Path) -> str:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "tags",
                     "-f", "json")["id"]
    made = _call(live, "POST", "/servers", {"server": {"name": "tagged", "imageRef": image, "flavorRef": "1",
                                                       "networks": "none"}})
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    for _ in range(600):  # bounded: 600 polls of 0.2 s
        if _call(live, "GET", f"/servers/{server_id}").json()["server"]["status"] == "ACTIVE":
            return server_id
        time.sleep(0.2)
    raise AssertionError("the server did not become ACTIVE")


def test_tags_add_check_replace_delete(live: Live, server_id: str) -> None:
    tags = f"/servers/{server_id}/tags"
    assert _call(live, "GET", tags).json() == {"tags": []}
    added = _call(live, "PUT", f"{tags}/web")
    assert added.status_code == 201 and added.headers["Location"].endswith(f"{tags}/web")
    assert _call(live, "PUT", f"{tags}/web").status_code == 204, "already there"
    assert _call(live, "GET", f"{tags}/web").status_code == 204
    assert _call(live, "GET", f"{tags}/db").status_code == 404
    assert _call(live, "GET", f"/servers/{server_id}").json()["server"]["tags"] == ["web"]
    replaced = _call(live, "PUT", tags, {"tags": ["a", "b", "a"]})
    assert replaced.status_code == 200 and replaced.json() == {"tags": ["a", "b"]}
    listed = lambda query: [s["id"] for s in _call(live, "GET", f"/servers?{query}").json()["servers"]]  # noqa: E731
    assert listed("tags=a,b") == [server_id] and listed("tags=a,c") == []
    assert listed("tags-any=c,b") == [server_id] and listed("not-tags-any=b") == []
    assert listed("not-tags=a,c") == [server_id]
    assert _call(live, "DELETE", f"{tags}/a").status_code == 204
    assert _call(live, "DELETE", f"{tags}/a").status_code == 404
    assert _call(live, "GET", tags).json() == {"tags": ["b"]}
    assert _call(live, "DELETE", tags).status_code == 204
    assert _call(live, "GET", tags).json() == {"tags": []}
    assert _call(live, "GET", tags, headers=None).status_code == 404, "tags start at 2.26"
    assert _call(live, "GET", tags, user="bob").status_code == 404, "another project's server"


@pytest.mark.parametrize(("body", "field"), [
    ({"tags": ["a/b"]}, "tags[0]"),
    ({"tags": ["x" * 61]}, "tags[0]"),
    ({"tags": [""]}, "tags[0]"),
    ({"tags": [str(n) for n in range(51)]}, "tags"),
    ({"tags": "a"}, "tags"),
    ({}, "tags"),
])
def test_bad_tags_are_refused_and_named(live: Live, server_id: str, body: dict[str, Any], field: str) -> None:
    resp = _call(live, "PUT", f"/servers/{server_id}/tags", body)
    assert resp.status_code == 400 and field in resp.json()["badRequest"]["message"], resp.text
    assert _call(live, "GET", f"/servers/{server_id}/tags").json() == {"tags": []}


def test_bad_tag_in_the_url_and_the_limit(live: Live, server_id: str) -> None:
    refused = _call(live, "PUT", f"/servers/{server_id}/tags/{'x' * 61}")
    assert refused.status_code == 400 and refused.json()["badRequest"]["message"].startswith("tag")
    assert _call(live, "PUT", f"/servers/{server_id}/tags/a,b").status_code == 400
    assert _call(live, "PUT", f"/servers/{server_id}/tags", {"tags": [str(n) for n in range(50)]}).status_code == 200
    full = _call(live, "PUT", f"/servers/{server_id}/tags/one-more")
    assert full.status_code == 400 and "50" in full.json()["badRequest"]["message"]
    assert _call(live, "DELETE", f"/servers/{server_id}/tags").status_code == 204


def test_server_password_is_empty(live: Live, server_id: str) -> None:
    path = f"/servers/{server_id}/os-server-password"
    assert _call(live, "GET", path).json() == {"password": ""}
    assert _call(live, "DELETE", path).status_code == 204
    assert _call(live, "GET", path, user="bob").status_code == 404
    assert _call(live, "GET", "/servers/no-such-server/os-server-password").status_code == 404


def test_diagnostics_read_the_domain(live: Live, server_id: str) -> None:
    path = f"/servers/{server_id}/diagnostics"
    assert _call(live, "GET", path).status_code == 403, "an admin's"
    standard = _call(live, "GET", path, headers={"OpenStack-API-Version": "compute 2.48"}, user="admin").json()
    flavor = _call(live, "GET", "/flavors/1").json()["flavor"]
    assert (standard["state"], standard["driver"], standard["num_cpus"]) == ("running", "libvirt", flavor["vcpus"])
    assert standard["memory_details"]["maximum"] == flavor["ram"] and standard["num_disks"] >= 1
    assert standard["num_nics"] == 0 and standard["nic_details"] == [], "built with networks none"
    legacy = _call(live, "GET", path, headers=None, user="admin").json()
    assert legacy["memory"] == flavor["ram"] * 1024 and "cpu_time" in legacy
    assert _call(live, "GET", "/servers/no-such/diagnostics", user="admin").status_code == 404


def test_external_events(live: Live, server_id: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    events = [{"name": "network-changed", "server_uuid": server_id}]
    assert _call(live, "POST", "/os-server-external-events", {"events": events}).status_code == 403, "a service's"
    done = _call(live, "POST", "/os-server-external-events", {"events": events}, user="admin")
    assert done.status_code == 200 and done.json()["events"] == [{**events[0], "status": "completed", "code": 200}]
    some = _call(live, "POST", "/os-server-external-events", user="admin",
                 body={"events": [*events, {"name": "network-vif-plugged", "server_uuid": missing}]})
    assert some.status_code == 207 and [e["code"] for e in some.json()["events"]] == [200, 404]
    none = _call(live, "POST", "/os-server-external-events", user="admin",
                 body={"events": [{"name": "network-changed", "server_uuid": missing}]})
    assert none.status_code == 404
    old = _call(live, "POST", "/os-server-external-events", user="admin",
                body={"events": [{"name": "volume-extended", "server_uuid": server_id}]})
    assert old.status_code == 400 and "name" in old.json()["badRequest"]["message"], "volume-extended is 2.51's"
    new = _call(live, "POST", "/os-server-external-events", user="admin",
                headers={"OpenStack-API-Version": "compute 2.51"},
                body={"events": [{"name": "volume-extended", "server_uuid": server_id}]})
    assert new.status_code == 200
    assert _call(live, "POST", "/os-server-external-events", {"events": []}, user="admin").status_code == 400
