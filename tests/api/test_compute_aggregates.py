"""Nova's os-aggregates (issue #12): an admin's named groups of compute hosts with metadata; the refusals
(admin only, unique names, unknown or repeated hosts, deleting one with hosts) name what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

V241 = {"OpenStack-API-Version": "compute 2.41"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "admin",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _host(live: Live) -> str:
    return _call(live, "GET", "/os-services?binary=nova-compute").json()["services"][0]["host"]


def test_aggregate_lifecycle(live: Live) -> None:
    made = _call(live, "POST", "/os-aggregates", {"aggregate": {"name": "rack-1", "availability_zone": "az1"}})
    assert made.status_code == 200, made.text
    created = made.json()["aggregate"]
    assert isinstance(created["id"], int) and "hosts" not in created and created["deleted"] is False
    path = f"/os-aggregates/{created['id']}"
    host = _host(live)
    added = _call(live, "POST", f"{path}/action", {"add_host": {"host": host}})
    assert added.status_code == 200 and added.json()["aggregate"]["hosts"] == [host]
    meta = _call(live, "POST", f"{path}/action", {"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})
    assert meta.json()["aggregate"]["metadata"] == {"availability_zone": "az1", "ssd": "true", "gpu": "no"}
    unset = _call(live, "POST", f"{path}/action", {"set_metadata": {"metadata": {"gpu": None}}})
    assert unset.json()["aggregate"]["metadata"] == {"availability_zone": "az1", "ssd": "true"}
    renamed = _call(live, "PUT", path, {"aggregate": {"name": "rack-one"}})
    assert renamed.json()["aggregate"]["name"] == "rack-one" and renamed.json()["aggregate"]["updated_at"]
    shown = _call(live, "GET", path, headers=V241).json()["aggregate"]
    assert shown["uuid"] and shown["hosts"] == [host] and shown["availability_zone"] == "az1"
    assert "uuid" not in _call(live, "GET", path).json()["aggregate"]
    assert [a["name"] for a in _call(live, "GET", "/os-aggregates").json()["aggregates"]] == ["rack-one"]
    cli = live.osc("admin", "aggregate", "show", str(created["id"]), "-f", "json")
    assert cli["name"] == "rack-one" and host in cli["hosts"]
    kept = _call(live, "DELETE", path)
    assert kept.status_code == 400 and "still has hosts" in kept.json()["badRequest"]["message"]
    assert _call(live, "POST", f"{path}/action", {"remove_host": {"host": host}}).json()["aggregate"]["hosts"] == []
    assert _call(live, "DELETE", path).status_code == 200
    assert _call(live, "GET", path).status_code == 404
    again = _call(live, "POST", "/os-aggregates", {"aggregate": {"name": "rack-2"}}).json()["aggregate"]
    assert again["id"] == created["id"], "the highest id is gone, so it comes back"
    assert _call(live, "DELETE", f"/os-aggregates/{again['id']}").status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"aggregate": {"name": ""}}, "aggregate.name"),
    ({"aggregate": {"name": "a" * 256}}, "aggregate.name"),
    ({"aggregate": {"name": " padded"}}, "aggregate.name"),
    ({"aggregate": {"name": "x", "availability_zone": ""}}, "aggregate.availability_zone"),
    ({"aggregate": {"name": "x", "hosts": []}}, "hosts"),
    ({"aggregate": {}}, "name"),
])
def test_bad_aggregate_bodies_are_named(live: Live, body: dict[str, Any], field: str) -> None:
    resp = _call(live, "POST", "/os-aggregates", body)
    assert resp.status_code == 400 and field in resp.json()["badRequest"]["message"], resp.text
    assert _call(live, "GET", "/os-aggregates").json()["aggregates"] == []


def test_aggregate_refusals(live: Live) -> None:
    agg = _call(live, "POST", "/os-aggregates", {"aggregate": {"name": "refusals"}}).json()["aggregate"]
    path = f"/os-aggregates/{agg['id']}"
    host = _host(live)
    assert _call(live, "POST", "/os-aggregates", {"aggregate": {"name": "refusals"}}).status_code == 409
    for method, where, body in (("GET", "/os-aggregates", None), ("POST", "/os-aggregates", {"aggregate": {"name": "u"}}),
                                ("GET", path, None), ("DELETE", path, None),
                                ("POST", f"{path}/action", {"add_host": {"host": host}})):
        assert _call(live, method, where, body, user="alice").status_code == 403, (method, where)
    assert _call(live, "POST", f"{path}/action", {"add_host": {"host": "no-such-host"}}).status_code == 404
    assert _call(live, "POST", f"{path}/action", {"add_host": {"host": host}}).status_code == 200
    assert _call(live, "POST", f"{path}/action", {"add_host": {"host": host}}).status_code == 409
    assert _call(live, "POST", f"{path}/action", {"remove_host": {"host": host}}, user="alice").status_code == 403
    assert _call(live, "POST", f"{path}/action", {"remove_host": {"host": "no-such-host"}}).status_code == 404
    bad = _call(live, "POST", f"{path}/action", {"explode": {}})
    assert bad.status_code == 400, bad.text
    for missing in ("/os-aggregates/-1", "/os-aggregates/999", "/os-aggregates/abc"):
        assert _call(live, "GET", missing).status_code == 404
        assert _call(live, "DELETE", missing).status_code == 404
    assert _call(live, "POST", f"{path}/action", {"remove_host": {"host": host}}).status_code == 200
    assert _call(live, "DELETE", path).status_code == 200
