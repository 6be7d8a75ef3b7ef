"""Glance metadata definitions (issue #12, found by Tempest): namespaces and their objects, properties, tags and
resource type associations; admins write, public namespaces are read by everyone, private ones by their owner."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

NS = "/image/v2/metadefs/namespaces"


def _call(live: Live, user: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, timeout=30,
                            headers={"X-Auth-Token": live.token(user)})


def _namespace(live: Live, name: str, **body: Any) -> dict[str, Any]:
    resp = _call(live, "admin", "POST", NS, {"namespace": name, "display_name": name, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_namespace_holds_objects_properties_tags_and_resource_types(live: Live) -> None:
    types = [t["name"] for t in _call(live, "alice", "GET", "/image/v2/metadefs/resource_types").json()[
        "resource_types"]]
    assert "OS::Glance::Image" in types
    created = _namespace(live, "hw-ns", visibility="public", description="CPU settings",
                         resource_type_associations=[{"name": "OS::Nova::Flavor", "prefix": "hw:"}],
                         properties={"hw_cpu_cores": {"title": "Cores", "type": "integer", "minimum": 1}})
    assert (created["namespace"], created["visibility"], created["protected"]) == ("hw-ns", "public", False)
    assert created["properties"]["hw_cpu_cores"]["minimum"] == 1

    # Objects: create, rename, delete.
    resp = _call(live, "admin", "POST", f"{NS}/hw-ns/objects", {"name": "CPU", "description": "limits"})
    assert resp.status_code == 201 and resp.json()["name"] == "CPU", resp.text
    # A client may send back what it read (times included): those members are ignored.
    resp = _call(live, "admin", "PUT", f"{NS}/hw-ns/objects/CPU", resp.json() | {"name": "CPU Limits"})
    assert resp.status_code == 200 and resp.json()["name"] == "CPU Limits", resp.text
    assert _call(live, "alice", "GET", f"{NS}/hw-ns/objects/CPU").status_code == 404
    assert [o["name"] for o in _call(live, "alice", "GET", f"{NS}/hw-ns/objects").json()["objects"]] == \
        ["CPU Limits"]

    # Properties: show by name, update, delete.
    prop = _call(live, "alice", "GET", f"{NS}/hw-ns/properties/hw_cpu_cores").json()
    assert (prop["name"], prop["title"], prop["type"]) == ("hw_cpu_cores", "Cores", "integer")
    resp = _call(live, "admin", "PUT", f"{NS}/hw-ns/properties/hw_cpu_cores",
                 {"name": "hw_cpu_cores", "title": "CPU cores", "type": "string", "enum": ["1", "2"]})
    assert resp.status_code == 200 and resp.json()["enum"] == ["1", "2"], resp.text
    assert _call(live, "admin", "DELETE", f"{NS}/hw-ns/properties/hw_cpu_cores").status_code == 204
    assert _call(live, "alice", "GET", f"{NS}/hw-ns/properties").json()["properties"] == {}

    # Tags: a list replaces them, one more by name, renamed, all deleted.
    resp = _call(live, "admin", "POST", f"{NS}/hw-ns/tags", {"tags": [{"name": "a"}, {"name": "b"}]})
    assert resp.status_code == 201, resp.text
    assert _call(live, "admin", "POST", f"{NS}/hw-ns/tags/c").status_code == 201
    assert _call(live, "admin", "POST", f"{NS}/hw-ns/tags/c").status_code == 409
    assert _call(live, "admin", "PUT", f"{NS}/hw-ns/tags/c", {"name": "d"}).json()["name"] == "d"
    assert [t["name"] for t in _call(live, "alice", "GET", f"{NS}/hw-ns/tags").json()["tags"]] == ["a", "b", "d"]
    assert _call(live, "admin", "DELETE", f"{NS}/hw-ns/tags").status_code == 204
    assert _call(live, "alice", "GET", f"{NS}/hw-ns/tags").json()["tags"] == []

    # Resource type associations.
    resp = _call(live, "admin", "POST", f"{NS}/hw-ns/resource_types", {"name": "OS::Glance::Image"})
    assert resp.status_code == 201, resp.text
    listed = _call(live, "alice", "GET", f"{NS}/hw-ns/resource_types").json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Nova::Flavor", "OS::Glance::Image"]
    assert _call(live, "admin", "DELETE", f"{NS}/hw-ns/resource_types/OS::Nova::Flavor").status_code == 204
    unknown = _call(live, "admin", "POST", f"{NS}/hw-ns/resource_types", {"name": "OS::Swift::Thing"})
    assert unknown.status_code == 404 and "OS::Glance::Image" in unknown.text, unknown.text
    filtered = _call(live, "alice", "GET", f"{NS}?resource_types=OS::Glance::Image").json()["namespaces"]
    assert [n["namespace"] for n in filtered] == ["hw-ns"]

    # Deleting the namespace takes what it holds; the name can be used again, empty.
    assert _call(live, "admin", "DELETE", f"{NS}/hw-ns").status_code == 204
    assert _call(live, "alice", "GET", f"{NS}/hw-ns").status_code == 404
    _namespace(live, "hw-ns")
    assert _call(live, "admin", "GET", f"{NS}/hw-ns/objects").json()["objects"] == []
    assert _call(live, "admin", "DELETE", f"{NS}/hw-ns").status_code == 204


def test_only_admins_write_and_private_namespaces_stay_private(live: Live) -> None:
    assert _call(live, "alice", "POST", NS, {"namespace": "mine"}).status_code == 403
    _namespace(live, "closed", visibility="private", protected=True)
    _namespace(live, "open", visibility="public")
    assert _call(live, "alice", "GET", f"{NS}/closed").status_code == 404
    assert "closed" not in [n["namespace"] for n in _call(live, "alice", "GET", NS).json()["namespaces"]]
    assert _call(live, "alice", "POST", f"{NS}/open/tags/t").status_code == 403
    assert _call(live, "alice", "DELETE", f"{NS}/open").status_code == 403
    assert _call(live, "admin", "POST", NS, {"namespace": "open"}).status_code == 409
    # Protected: not deleted until unprotected.
    assert _call(live, "admin", "DELETE", f"{NS}/closed").status_code == 403
    resp = _call(live, "admin", "PUT", f"{NS}/closed", {"namespace": "closed", "protected": False})
    assert resp.status_code == 200 and resp.json()["protected"] is False, resp.text
    assert _call(live, "admin", "PUT", f"{NS}/open", {"namespace": "renamed"}).status_code == 409
    for name in ("closed", "open"):
        assert _call(live, "admin", "DELETE", f"{NS}/{name}").status_code == 204


@pytest.mark.parametrize(("path", "body", "named"), [
    ("", {"display_name": "no name"}, "namespace"),
    ("", {"namespace": "v", "visibility": "everyone"}, "visibility"),
    ("", {"namespace": "x" * 81}, "namespace"),
    ("", {"namespace": "p", "properties": {"k": {"title": "K", "type": "strin"}}}, "properties.k.type"),
    ("/base/objects", {"description": "nameless"}, "name"),
    ("/base/properties", {"name": "k", "type": "string"}, "title"),
    ("/base/tags", {"tags": [{"name": "ok"}, {"nom": "x"}]}, "tags[1]"),
])
def test_a_bad_definition_is_refused_naming_the_field(live: Live, path: str, body: dict[str, Any],
                                                      named: str) -> None:
    if _call(live, "admin", "GET", f"{NS}/base").status_code == 404:
        _namespace(live, "base")
    resp = _call(live, "admin", "POST", f"{NS}{path}", body)
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["error"]["message"], resp.text
    assert [n["namespace"] for n in _call(live, "admin", "GET", NS).json()["namespaces"]] == ["base"]
    listed = _call(live, "admin", "GET", f"{NS}/base").json()
    assert not {"objects", "properties", "tags"} & set(listed)
