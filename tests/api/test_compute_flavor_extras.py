"""Nova's flavor extras (issue #12): extra specs, private flavors and their access lists, descriptions (2.55),
through the served API and the stock openstack CLI."""

from __future__ import annotations

from typing import Any

import requests
from apitest import Live, live  # noqa: F401 (fixture)

V255 = {"OpenStack-API-Version": "compute 2.55"}
V261 = {"OpenStack-API-Version": "compute 2.61"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _flavor(live: Live, name: str, public: Any = True, headers: dict[str, str] | None = None,
            **extra: Any) -> dict[str, Any]:
    made = _call(live, "POST", "/flavors", {"flavor": {"name": name, "ram": 512, "vcpus": 1, "disk": 1,
                                                        "os-flavor-access:is_public": public, **extra}},
                 user="admin", headers=headers)
    assert made.status_code == 200, made.text
    return made.json()["flavor"]


def _project_of(live: Live, user: str) -> str:
    resp = requests.get(f"{live.url}/identity/v3/auth/tokens", timeout=30,
                        headers={"X-Auth-Token": live.token(user), "X-Subject-Token": live.token(user)})
    return resp.json()["token"]["project"]["id"]


def test_extra_specs_set_show_update_unset(live: Live) -> None:
    flavor = _flavor(live, "specs")["id"]
    specs = f"/flavors/{flavor}/os-extra_specs"
    assert _call(live, "GET", specs).json() == {"extra_specs": {}}
    set_ = _call(live, "POST", specs, {"extra_specs": {"hw:numa_nodes": 2, "quota:vif": "x", "b": True}}, "admin")
    assert set_.status_code == 200 and set_.json() == {"extra_specs": {"hw:numa_nodes": "2", "quota:vif": "x",
                                                                      "b": "true"}}
    assert _call(live, "POST", specs, {"extra_specs": {"more": "1"}}, "admin").status_code == 200
    assert set(_call(live, "GET", specs).json()["extra_specs"]) == {"hw:numa_nodes", "quota:vif", "b", "more"}
    assert _call(live, "GET", f"{specs}/quota:vif").json() == {"quota:vif": "x"}
    updated = _call(live, "PUT", f"{specs}/quota:vif", {"quota:vif": "y"}, "admin")
    assert updated.status_code == 200 and updated.json() == {"quota:vif": "y"}
    assert _call(live, "DELETE", f"{specs}/quota:vif", user="admin").status_code == 200
    assert _call(live, "GET", f"{specs}/quota:vif").status_code == 404
    assert _call(live, "DELETE", f"{specs}/quota:vif", user="admin").status_code == 404
    shown = _call(live, "GET", f"/flavors/{flavor}", headers=V261).json()["flavor"]
    assert shown["extra_specs"] == {"hw:numa_nodes": "2", "b": "true", "more": "1"}
    cli = live.osc("admin", "flavor", "show", flavor, "-f", "json")
    assert cli["properties"]["hw:numa_nodes"] == "2"


def test_bad_extra_specs_are_refused_and_named(live: Live) -> None:
    flavor = _flavor(live, "specs-bad")["id"]
    specs = f"/flavors/{flavor}/os-extra_specs"
    for method, path, body in (("POST", specs, {"extra_specs": {"k": "v"}}), ("PUT", f"{specs}/k", {"k": "v"}),
                               ("DELETE", f"{specs}/k", None)):
        refused = _call(live, method, path, body)
        assert refused.status_code == 403 and "forbidden" in refused.json(), refused.text
    mismatch = _call(live, "PUT", f"{specs}/a", {"b": "v"}, "admin")
    assert mismatch.status_code == 400 and "body: request body and URI mismatch" in mismatch.json()["badRequest"]["message"]
    two = _call(live, "PUT", f"{specs}/a", {"a": "v", "b": "w"}, "admin")
    assert two.status_code == 400, two.text
    bad_key = _call(live, "POST", specs, {"extra_specs": {"bad/key": "v"}}, "admin")
    assert bad_key.status_code == 400 and "bad/key" in bad_key.json()["badRequest"]["message"]
    long_value = _call(live, "POST", specs, {"extra_specs": {"k": "v" * 256}}, "admin")
    assert long_value.status_code == 400 and "extra_specs.k" in long_value.json()["badRequest"]["message"]
    assert _call(live, "GET", "/flavors/no-such/os-extra_specs").status_code == 404
    assert _call(live, "GET", specs).json() == {"extra_specs": {}}, "nothing was written"


def test_private_flavor_access(live: Live, tmp_path: Any) -> None:
    flavor = _flavor(live, "private", public="False")["id"]
    alice_project = _project_of(live, "alice")
    listed = lambda user: [f["id"] for f in _call(live, "GET", "/flavors/detail", user=user).json()["flavors"]]  # noqa: E731
    assert flavor not in listed("alice") and flavor in listed("admin")
    assert _call(live, "GET", f"/flavors/{flavor}").status_code == 404
    access = f"/flavors/{flavor}/os-flavor-access"
    assert _call(live, "GET", access, user="admin").json() == {"flavor_access": []}
    added = _call(live, "POST", f"/flavors/{flavor}/action", {"addTenantAccess": {"tenant": alice_project}}, "admin")
    assert added.status_code == 200
    assert added.json()["flavor_access"] == [{"flavor_id": flavor, "tenant_id": alice_project}]
    again = _call(live, "POST", f"/flavors/{flavor}/action", {"addTenantAccess": {"tenant": alice_project}}, "admin")
    assert again.status_code == 409
    assert flavor in listed("alice") and flavor not in listed("bob")
    assert _call(live, "GET", f"/flavors/{flavor}").status_code == 200
    assert _call(live, "POST", f"/flavors/{flavor}/action",
                 {"addTenantAccess": {"tenant": "x"}}).status_code == 403, "an admin's"
    removed = _call(live, "POST", f"/flavors/{flavor}/action", {"removeTenantAccess": {"tenant": alice_project}},
                    "admin")
    assert removed.status_code == 200 and removed.json() == {"flavor_access": []}
    assert _call(live, "POST", f"/flavors/{flavor}/action", {"removeTenantAccess": {"tenant": alice_project}},
                 "admin").status_code == 404
    assert flavor not in listed("alice")
    refused = _call(live, "POST", "/servers", {"server": {"name": "p", "imageRef": "x", "flavorRef": flavor,
                                                          "networks": "none"}})
    assert refused.status_code == 400 and "flavorRef" in refused.json()["badRequest"]["message"]
    public = _flavor(live, "public-one")["id"]
    assert _call(live, "GET", f"/flavors/{public}/os-flavor-access", user="admin").status_code == 404
    assert _call(live, "POST", f"/flavors/{public}/action", {"addTenantAccess": {"tenant": alice_project}},
                 "admin").status_code == 409
    bad = _call(live, "POST", f"/flavors/{flavor}/action", {"addTenantAccess": {}}, "admin")
    assert bad.status_code == 400 and "tenant" in bad.json()["badRequest"]["message"]


def test_flavor_description_from_255(live: Live) -> None:
    flavor = _flavor(live, "described", headers=V255, description="first")
    assert flavor["description"] == "first"
    assert _call(live, "PUT", f"/flavors/{flavor['id']}", {"flavor": {"description": "new"}}).status_code == 404
    assert _call(live, "PUT", f"/flavors/{flavor['id']}", {"flavor": {"description": "new"}},
                 headers=V255).status_code == 403
    updated = _call(live, "PUT", f"/flavors/{flavor['id']}", {"flavor": {"description": "new"}}, "admin", V255)
    assert updated.status_code == 200 and updated.json()["flavor"]["description"] == "new"
    assert _call(live, "GET", f"/flavors/{flavor['id']}", headers=V255).json()["flavor"]["description"] == "new"
    bad = _call(live, "PUT", f"/flavors/{flavor['id']}", {"flavor": {"description": 5}}, "admin", V255)
    assert bad.status_code == 400 and "flavor.description" in bad.json()["badRequest"]["message"]
    assert _call(live, "POST", "/flavors", {"flavor": {"name": "d2", "ram": 1, "vcpus": 1, "disk": 0,
                                                       "description": "x"}}, "admin").status_code == 400
    assert _call(live, "DELETE", f"/flavors/{flavor['id']}", user="admin").status_code == 202
    again = _flavor(live, "described-again", id=flavor["id"])
    assert _call(live, "GET", f"/flavors/{again['id']}", headers=V255).json()["flavor"]["description"] is None
