"""Cinder's QoS specs (issue #12): create, list, show, set and unset keys, associate with volume types and
disassociate, delete (refused while associated unless forced); admin only, each bad input naming its field."""

from __future__ import annotations

from typing import Any

from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call


def _type(live, name: str) -> str:
    made = _call(live, "POST", "admin", "/types", {"volume_type": {"name": name}})
    assert made.status_code == 200, made.text
    return made.json()["volume_type"]["id"]


def _qos(live, body: dict[str, Any], user: str = "admin") -> Any:
    return _call(live, "POST", user, "/qos-specs", {"qos_specs": body})


def test_qos_specs_lifecycle(live) -> None:
    created = _qos(live, {"name": "gold", "consumer": "front-end", "read_iops_sec": "2000", "burst": 5})
    assert created.status_code == 200, created.text
    spec = created.json()["qos_specs"]
    assert spec == {"id": spec["id"], "name": "gold", "consumer": "front-end",
                    "specs": {"read_iops_sec": "2000", "burst": "5"}}
    assert created.json()["links"][0]["href"].endswith(f"/volume/v3/qos-specs/{spec['id']}")
    assert spec in _call(live, "GET", "admin", "/qos-specs").json()["qos_specs"]
    assert _qos(live, {"name": "plain"}).json()["qos_specs"]["consumer"] == "back-end", "Cinder's default"

    qid = spec["id"]
    set_key = _call(live, "PUT", "admin", f"/qos-specs/{qid}", {"qos_specs": {"iops_bytes": "500"}})
    assert set_key.status_code == 200 and set_key.json() == {"qos_specs": {"iops_bytes": "500"}}
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}").json()["qos_specs"]["specs"]["iops_bytes"] == "500"
    unset = _call(live, "PUT", "admin", f"/qos-specs/{qid}/delete_keys", {"keys": ["iops_bytes"]})
    assert unset.status_code == 202
    assert "iops_bytes" not in _call(live, "GET", "admin", f"/qos-specs/{qid}").json()["qos_specs"]["specs"]
    missing = _call(live, "PUT", "admin", f"/qos-specs/{qid}/delete_keys", {"keys": ["iops_bytes"]})
    assert missing.status_code == 404 and "iops_bytes" in missing.text

    types = [_type(live, f"qos-type-{n}") for n in range(3)]
    for type_id in types:
        assert _call(live, "GET", "admin", f"/qos-specs/{qid}/associate?vol_type_id={type_id}").status_code == 202
    listed = _call(live, "GET", "admin", f"/qos-specs/{qid}/associations").json()["qos_associations"]
    assert sorted(a["id"] for a in listed) == sorted(types)
    assert {a["association_type"] for a in listed} == {"volume_type"}
    other = _qos(live, {"name": "silver"}).json()["qos_specs"]["id"]
    taken = _call(live, "GET", "admin", f"/qos-specs/{other}/associate?vol_type_id={types[0]}")
    assert taken.status_code == 400 and "vol_type_id" in taken.json()["badRequest"]["message"]
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}/disassociate?vol_type_id={types[0]}").status_code == 202
    listed = _call(live, "GET", "admin", f"/qos-specs/{qid}/associations").json()["qos_associations"]
    assert sorted(a["id"] for a in listed) == sorted(types[1:])

    in_use = _call(live, "DELETE", "admin", f"/qos-specs/{qid}")
    assert in_use.status_code == 400 and "associated" in in_use.text
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}/disassociate_all").status_code == 202
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}/associations").json()["qos_associations"] == []
    assert _call(live, "GET", "admin", f"/qos-specs/{other}/associate?vol_type_id={types[1]}").status_code == 202
    assert _call(live, "DELETE", "admin", f"/qos-specs/{other}?force=True").status_code == 202
    assert _call(live, "DELETE", "admin", f"/qos-specs/{qid}").status_code == 202
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}").status_code == 404


def test_qos_refusals_name_the_field(live) -> None:
    assert _qos(live, {"name": "dup"}).status_code == 200
    assert _qos(live, {"name": "dup"}).status_code == 409
    for body, field in (({"consumer": "front-end"}, "name"), ({"name": "x", "consumer": "sideways"}, "consumer"),
                        ({"name": "x", "k": "v" * 256}, "k"), ({"name": ""}, "name")):
        refused = _qos(live, body)
        assert refused.status_code == 400, (body, refused.text)
        assert field in refused.json()["badRequest"]["message"], refused.text
    qid = _call(live, "GET", "admin", "/qos-specs").json()["qos_specs"][0]["id"]
    no_type = _call(live, "GET", "admin", f"/qos-specs/{qid}/associate")
    assert no_type.status_code == 400 and "vol_type_id" in no_type.json()["badRequest"]["message"]
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}/associate?vol_type_id=nope").status_code == 404
    assert _call(live, "GET", "admin", f"/qos-specs/{qid}/elsewhere").status_code in (400, 404)
    assert _call(live, "PUT", "admin", f"/qos-specs/{qid}/delete_keys", {"keys": []}).status_code == 400
    assert _qos(live, {"name": "mine"}, user="alice").status_code == 403
    assert _call(live, "GET", "alice", "/qos-specs").status_code == 403
