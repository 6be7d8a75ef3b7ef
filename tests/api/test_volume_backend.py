"""Cinder's views of its backend (issue #12): os-services (and enabling, disabling, freezing it), os-hosts,
scheduler-stats pools and capabilities, the admin-only host attribute of a volume, and the scheduling of a new
volume: a disabled volume service or a type's extra spec the backend does not satisfy leaves it in error with a
user message, as Cinder's scheduler does."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call, _volume, _wait

from api.volume.backend import POOL_HOST, VOLUME_HOST, spec_matches


def _services(live, query: str = "") -> list[dict[str, Any]]:
    listed = _call(live, "GET", "admin", f"/os-services{query}")
    assert listed.status_code == 200, listed.text
    return listed.json()["services"]


def test_services_and_their_filters(live) -> None:
    services = _services(live)
    assert sorted(s["binary"] for s in services) == ["cinder-scheduler", "cinder-volume"]
    host = VOLUME_HOST.split("@")[0]
    assert sorted(s["binary"] for s in _services(live, f"?host={host}")) == ["cinder-scheduler", "cinder-volume"]
    assert [s["host"] for s in _services(live, "?binary=cinder-volume")] == [VOLUME_HOST]
    assert _services(live, "?host=elsewhere") == []
    assert _call(live, "GET", "alice", "/os-services").status_code == 403


def test_service_actions_name_what_is_wrong(live) -> None:
    def put(action: str, body: dict[str, Any], user: str = "admin") -> requests.Response:
        return _call(live, "PUT", user, f"/os-services/{action}", body)

    unknown_host = put("enable", {"host": "invalid_host", "binary": "cinder-volume"})
    assert unknown_host.status_code == 404 and "invalid_host" in unknown_host.json()["itemNotFound"]["message"]
    assert put("disable", {"host": VOLUME_HOST, "binary": "invalid_binary"}).status_code == 404
    no_reason = put("disable-log-reason", {"host": VOLUME_HOST, "binary": "cinder-volume", "disabled_reason": None})
    assert no_reason.status_code == 400 and "disabled_reason" in no_reason.json()["badRequest"]["message"]
    missing = put("disable", {"binary": "cinder-volume"})
    assert missing.status_code == 400 and "host" in missing.json()["badRequest"]["message"]
    for action in ("freeze", "thaw"):
        bad = put(action, {"host": "invalid_host"})
        assert bad.status_code == 400 and "host" in bad.json()["badRequest"]["message"]
    assert put("enable", {"host": VOLUME_HOST, "binary": "cinder-volume"}, user="alice").status_code == 403

    assert put("freeze", {"host": VOLUME_HOST}).status_code == 200
    assert [s["frozen"] for s in _services(live, "?binary=cinder-volume")] == [True]
    assert put("thaw", {"host": VOLUME_HOST}).status_code == 200
    assert [s["frozen"] for s in _services(live, "?binary=cinder-volume")] == [False]


def test_a_disabled_volume_service_schedules_nothing(live) -> None:
    body = {"host": VOLUME_HOST, "binary": "cinder-volume", "disabled_reason": "maintenance"}
    disabled = _call(live, "PUT", "admin", "/os-services/disable-log-reason", body)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"disabled": True, "status": "disabled", "host": VOLUME_HOST,
                               "service": "cinder-volume", "binary": "cinder-volume", "disabled_reason": "maintenance"}
    try:
        hosts = _call(live, "GET", "admin", "/os-hosts").json()["hosts"]
        assert {h["host_name"]: h["service-state"] for h in hosts}[VOLUME_HOST] == "disabled"
        assert _call(live, "GET", "admin", f"/os-hosts/{VOLUME_HOST}").status_code == 404
        created = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "name": "nowhere"}})
        assert created.status_code == 202, created.text
        failed = _wait(live, "alice", f"/volumes/{created.json()['volume']['id']}", "volume", "error")
        messages = _call(live, "GET", "alice", "/messages", version="3.3").json()["messages"]
        assert any(m["resource_uuid"] == failed["id"] and "disabled" in m["user_message"] for m in messages)
        shown = _call(live, "GET", "admin", f"/volumes/{failed['id']}").json()["volume"]
        assert shown["os-vol-host-attr:host"] is None, "never placed"
        assert _call(live, "DELETE", "alice", f"/volumes/{failed['id']}").status_code == 202
    finally:
        enabled = _call(live, "PUT", "admin", "/os-services/enable", {"host": VOLUME_HOST, "binary": "cinder-volume"})
        assert enabled.status_code == 200 and enabled.json()["disabled_reason"] is None
    assert _volume(live, "alice", "placed again")["status"] == "available"


def test_hosts_pools_and_capabilities(live) -> None:
    volume = _volume(live, "alice", "counted")
    hosts = _call(live, "GET", "admin", "/os-hosts").json()["hosts"]
    assert len(hosts) == 2 and {h["service"] for h in hosts} == {"cinder-scheduler", "cinder-volume"}
    rows = _call(live, "GET", "admin", f"/os-hosts/{VOLUME_HOST}").json()["host"]
    total = rows[0]["resource"]
    assert total["project"] == "(total)" and int(total["volume_count"]) >= 1
    assert int(total["volume_count"]) == sum(int(r["resource"]["volume_count"]) for r in rows[1:])

    brief = _call(live, "GET", "admin", "/scheduler-stats/get_pools").json()["pools"]
    assert brief == [{"name": POOL_HOST}]
    pool = _call(live, "GET", "admin", "/scheduler-stats/get_pools?detail=true").json()["pools"][0]
    caps = pool["capabilities"]
    assert caps["free_capacity_gb"] <= caps["total_capacity_gb"] and caps["allocated_capacity_gb"] >= 1
    shown = _call(live, "GET", "admin", f"/capabilities/{pool['name']}").json()
    assert [shown[k] for k in ("vendor_name", "volume_backend_name", "storage_protocol")] == \
        [caps[k] for k in ("vendor_name", "volume_backend_name", "storage_protocol")]
    assert shown["namespace"].startswith("OS::Storage::Capabilities::")
    assert _call(live, "GET", "admin", "/capabilities/nowhere@nothing").status_code == 404
    assert _call(live, "GET", "alice", "/scheduler-stats/get_pools").status_code == 403

    as_admin = _call(live, "GET", "admin", f"/volumes/{volume['id']}").json()["volume"]
    assert as_admin["os-vol-host-attr:host"] == POOL_HOST
    assert "os-vol-host-attr:host" not in _call(live, "GET", "alice", f"/volumes/{volume['id']}").json()["volume"]


def test_extra_specs_must_match_the_backend(live) -> None:
    def typed(name: str, specs: dict[str, str]) -> str:
        made = _call(live, "POST", "admin", "/types", {"volume_type": {"name": name, "extra_specs": specs}})
        assert made.status_code == 200, made.text
        return made.json()["volume_type"]["id"]

    bogus = typed("bogus-backend", {"storage_protocol": "iSCSI-nowhere", "vendor_name": "Nobody"})
    fits = typed("fits-backend", {"capabilities:storage_protocol": "file", "vendor_name": "<in> Open",
                                  "qos:read_iops": "100"})
    created = _call(live, "POST", "admin", "/volumes", {"volume": {"size": 1, "volume_type": bogus}})
    failed = _wait(live, "admin", f"/volumes/{created.json()['volume']['id']}", "volume", "error")
    messages = _call(live, "GET", "admin", "/messages", version="3.3").json()["messages"]
    text = next(m["user_message"] for m in messages if m["resource_uuid"] == failed["id"])
    assert "No valid backend" in text and "storage_protocol" in text
    assert _volume(live, "admin", "fits", volume_type=fits)["status"] == "available"


@pytest.mark.parametrize("have, wanted, expected", [
    ("file", "file", True), ("file", "iSCSI", False), (True, "<is> True", True), (False, "<is> True", False),
    ("Open Source", "<in> Open", True), ("file", "<or> nfs <or> file", True), ("file", "<or> nfs", False),
    (1.0, ">= 1", True), (1.0, ">= 2", False), ("x", ">= 2", False), ("abc", "s== abc", True),
])
def test_spec_operators(have: Any, wanted: str, expected: bool) -> None:
    assert spec_matches(have, wanted) is expected
