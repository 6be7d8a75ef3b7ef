"""Nova server groups (issue #12): policies by microversion, members through the `group` scheduler hint,
anti-affinity on one hypervisor, bad requests named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, names_field, qcow2_file  # noqa: F401 (fixtures)

V264 = {"OpenStack-API-Version": "compute 2.64"}


def _call(live: Live, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          user: str = "alice") -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def test_groups_by_version(live: Live) -> None:
    old = _call(live, "POST", "/os-server-groups", {"server_group": {"name": "g1", "policies": ["affinity"]}})
    assert old.status_code == 200, old.text
    assert old.json()["server_group"] == {"id": old.json()["server_group"]["id"], "name": "g1",
                                          "policies": ["affinity"], "members": [], "metadata": {}}
    new = _call(live, "POST", "/os-server-groups", {"server_group": {
        "name": "g2", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}, V264)
    shown = new.json()["server_group"]
    assert (shown["policy"], shown["rules"], shown["project_id"]) == ("anti-affinity", {"max_server_per_host": 2},
                                                                      live.sdk("alice").current_project_id)
    names = {g["name"] for g in _call(live, "GET", "/os-server-groups").json()["server_groups"]}
    assert {"g1", "g2"} <= names
    assert _call(live, "GET", f"/os-server-groups/{shown['id']}", user="bob").status_code == 404
    assert _call(live, "DELETE", f"/os-server-groups/{shown['id']}").status_code == 204
    assert _call(live, "GET", f"/os-server-groups/{shown['id']}").status_code == 404
    conn = live.sdk("alice")
    made = conn.compute.create_server_group(name="g3", policy="affinity")
    assert conn.compute.get_server_group(made.id).name == "g3"


@pytest.mark.parametrize(("body", "headers", "field"), [
    ({"name": "x", "policies": ["nearby"]}, {}, "server_group.policies[0]"),
    ({"name": "x", "policies": ["affinity", "anti-affinity"]}, {}, "server_group.policies"),
    ({"name": "x", "policies": ["soft-affinity"]}, {}, "server_group.policies[0]"),
    ({"name": "", "policies": ["affinity"]}, {}, "server_group.name"),
    ({"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}, V264,
     "server_group.rules.max_server_per_host"),
    ({"name": "x", "policy": "anti-affinity", "rules": {"spread": 1}}, V264, "server_group.rules"),
])
def test_bad_groups_are_named(live: Live, body: dict[str, Any], headers: dict[str, str], field: str) -> None:
    before = len(_call(live, "GET", "/os-server-groups").json()["server_groups"])
    resp = _call(live, "POST", "/os-server-groups", {"server_group": body}, headers)
    assert resp.status_code == 400 and names_field(resp.json()["badRequest"]["message"], field), resp.text
    assert len(_call(live, "GET", "/os-server-groups").json()["server_groups"]) == before


def test_members_join_with_the_group_hint(live: Live, qcow2_file: Path) -> None:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "groups-image", "-f", "json")["id"]
    group = _call(live, "POST", "/os-server-groups",
                  {"server_group": {"name": "solo", "policies": ["anti-affinity"]}}).json()["server_group"]
    server = {"name": "member", "imageRef": image, "flavorRef": "1", "networks": "auto"}
    first = _call(live, "POST", "/servers", {"server": server, "os:scheduler_hints": {"group": group["id"]}})
    assert first.status_code == 202, first.text
    server_id = first.json()["server"]["id"]
    second = _call(live, "POST", "/servers", {"server": {**server, "name": "member2"},
                                              "os:scheduler_hints": {"group": group["id"]}})
    assert second.status_code == 400 and "anti-affinity" in second.json()["badRequest"]["message"]
    assert _call(live, "GET", "/servers?name=^member2$").json()["servers"] == [], "nothing half-made"
    assert _call(live, "GET", f"/os-server-groups/{group['id']}").json()["server_group"]["members"] == [server_id]
    shown = _call(live, "GET", f"/servers/{server_id}", headers={"OpenStack-API-Version": "compute 2.71"})
    assert shown.json()["server"]["server_groups"] == [group["id"]]
    assert _call(live, "DELETE", f"/servers/{server_id}").status_code == 204
