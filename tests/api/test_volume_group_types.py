"""Cinder's group types (issue #12): microversion 3.11, admin create/update/delete, group specs, listing by
is_public and sort; bad input names its field."""

from __future__ import annotations

from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call

V = "3.11"


def _make(live, name: str, **extra):
    return _call(live, "POST", "admin", "/group_types", {"group_type": {"name": name, **extra}}, version=V)


def test_group_type_lifecycle(live) -> None:
    assert _call(live, "GET", "admin", "/group_types").status_code == 404, "3.11 and later only"
    made = _make(live, "gt-a", description="first", is_public=True,
                 group_specs={"consistent_group_snapshot_enabled": "<is> False"})
    assert made.status_code == 202, made.text
    gtype = made.json()["group_type"]
    assert gtype["group_specs"] == {"consistent_group_snapshot_enabled": "<is> False"}
    private = _make(live, "gt-b", is_public=False).json()["group_type"]
    assert _make(live, "gt-a").status_code == 409

    def names(query: str, user: str = "admin") -> list[str]:
        return [t["name"] for t in _call(live, "GET", user, f"/group_types{query}", version=V).json()["group_types"]]

    assert names("?sort=name:asc&is_public=None") == ["gt-a", "gt-b"]
    assert names("?sort=name:desc&is_public=None") == ["gt-b", "gt-a"]
    assert names("?is_public=false") == ["gt-b"] and names("?is_public=true") == ["gt-a"]
    assert names("", user="alice") == ["gt-a"]
    assert _call(live, "GET", "alice", f"/group_types/{private['id']}", version=V).status_code == 404

    path = f"/group_types/{gtype['id']}"
    updated = _call(live, "PUT", "admin", path, {"group_type": {"name": "gt-c", "description": "d"}}, version=V)
    assert updated.status_code == 200 and updated.json()["group_type"]["name"] == "gt-c"
    assert _call(live, "GET", "alice", path, version=V).json()["group_type"]["description"] == "d"

    specs = _call(live, "POST", "admin", f"{path}/group_specs", {"group_specs": {"k1": "v1", "k2": "v2"}}, version=V)
    assert specs.status_code == 202 and specs.json() == {"group_specs": {"k1": "v1", "k2": "v2"}}
    one = _call(live, "PUT", "admin", f"{path}/group_specs/k2", {"k2": "v2b"}, version=V)
    assert one.status_code == 200 and one.json() == {"k2": "v2b"}
    assert _call(live, "GET", "admin", f"{path}/group_specs/k2", version=V).json() == {"k2": "v2b"}
    assert _call(live, "DELETE", "admin", f"{path}/group_specs/k1", version=V).status_code == 202
    assert _call(live, "GET", "admin", f"{path}/group_specs/k1", version=V).status_code == 404
    listed = _call(live, "GET", "admin", f"{path}/group_specs", version=V).json()["group_specs"]
    assert listed == {"consistent_group_snapshot_enabled": "<is> False", "k2": "v2b"}

    assert _call(live, "DELETE", "alice", path, version=V).status_code == 403
    assert _call(live, "DELETE", "admin", path, version=V).status_code == 202
    assert _call(live, "GET", "admin", path, version=V).status_code == 404


def test_group_type_refusals(live) -> None:
    for body, field in (({}, "name"), ({"name": "x" * 256}, "name"), ({"name": "ok", "is_public": "maybe"},
                                                                          "is_public")):
        refused = _call(live, "POST", "admin", "/group_types", {"group_type": body}, version=V)
        assert refused.status_code == 400 and field in refused.json()["badRequest"]["message"], refused.text
    assert _call(live, "POST", "alice", "/group_types", {"group_type": {"name": "mine"}}, version=V).status_code == 403
    gtype = _make(live, "gt-refusals").json()["group_type"]
    wrong_key = _call(live, "PUT", "admin", f"/group_types/{gtype['id']}/group_specs/a", {"b": "1"}, version=V)
    assert wrong_key.status_code == 400
    empty = _call(live, "PUT", "admin", f"/group_types/{gtype['id']}", {"group_type": {}}, version=V)
    assert empty.status_code == 400 and "group_type" in empty.json()["badRequest"]["message"]
