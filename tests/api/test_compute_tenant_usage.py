"""Nova's os-simple-tenant-usage and os-instance_usage_audit_log (issue #12): a project's servers' hours in a period, weighted by their
flavors, on a server built by the real engine on the simulated hypervisor; the refusals name the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from apitest import Live, live, qcow2_file  # noqa: F401 (fixtures)


def _call(live: Live, path: str, user: str = "admin", **query: Any) -> requests.Response:
    return requests.get(f"{live.url}/compute/v2.1{path}", params=query, timeout=60,
                        headers={"X-Auth-Token": live.token(user)})


def _period(days_before: int, days_after: int) -> dict[str, str]:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return {"start": (now - timedelta(days=days_before)).isoformat(),
            "end": (now + timedelta(days=days_after)).isoformat()}


@pytest.fixture(scope="module")
def server(live: Live, qcow2_file: Path) -> dict[str, Any]:  # noqa: F811
    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "usage",
                     "-f", "json")["id"]
    made = requests.post(f"{live.url}/compute/v2.1/servers", timeout=60, headers={"X-Auth-Token": live.token("alice")},
                         json={"server": {"name": "used", "imageRef": image, "flavorRef": "1", "networks": "none"}})
    assert made.status_code == 202, made.text
    return requests.get(f"{live.url}/compute/v2.1/servers/{made.json()['server']['id']}", timeout=60,
                        headers={"X-Auth-Token": live.token("alice")}).json()["server"]


def test_usage_of_a_project(live: Live, server: dict[str, Any]) -> None:
    project = server["tenant_id"]
    flavor = _call(live, "/flavors/1").json()["flavor"]
    usage = _call(live, f"/os-simple-tenant-usage/{project}", **_period(1, 1)).json()["tenant_usage"]
    (used,) = usage["server_usages"]
    assert (used["instance_id"], used["name"], used["vcpus"], used["memory_mb"], used["flavor"], used["ended_at"]) == (
        server["id"], "used", flavor["vcpus"], flavor["ram"], flavor["name"], None)
    assert 0 <= used["hours"] < 1 and usage["total_hours"] == used["hours"]
    assert usage["total_vcpus_usage"] == pytest.approx(used["hours"] * flavor["vcpus"])
    own = _call(live, f"/os-simple-tenant-usage/{project}", user="alice", **_period(1, 1)).json()["tenant_usage"]
    assert own["tenant_id"] == project and len(own["server_usages"]) == 1, "a member sees the project's own"
    listed = _call(live, "/os-simple-tenant-usage", detailed=1, **_period(1, 1)).json()["tenant_usages"]
    assert [u["tenant_id"] for u in listed] == [project] and len(listed[0]["server_usages"]) == 1
    brief = _call(live, "/os-simple-tenant-usage", **_period(1, 1)).json()["tenant_usages"]
    assert "server_usages" not in brief[0]
    before = _call(live, f"/os-simple-tenant-usage/{project}", start="2001-01-01T00:00:00",
                   end="2001-01-02T00:00:00").json()
    assert before == {"tenant_usage": {}}, "the server did not exist then"


def test_usage_refusals(live: Live, server: dict[str, Any]) -> None:
    project = server["tenant_id"]
    reversed_period = _call(live, f"/os-simple-tenant-usage/{project}", start=_period(0, 1)["end"],
                            end=_period(1, 0)["start"])
    assert reversed_period.status_code == 400 and "start" in reversed_period.json()["badRequest"]["message"]
    bad = _call(live, f"/os-simple-tenant-usage/{project}", start="yesterday")
    assert bad.status_code == 400 and bad.json()["badRequest"]["message"].startswith("start")
    assert _call(live, "/os-simple-tenant-usage", user="alice").status_code == 403
    assert _call(live, "/os-simple-tenant-usage/").status_code == 404, "an empty project id"
    assert _call(live, "/os-simple-tenant-usage/no-such-project").status_code == 404
    assert _call(live, f"/os-simple-tenant-usage/{project}", user="bob").status_code == 403, "another project's"


def test_usage_audit_log_was_never_run(live: Live) -> None:
    logs = _call(live, "/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    host = _call(live, "/os-services?binary=nova-compute").json()["services"][0]["host"]
    assert (logs["hosts_not_run"], logs["num_hosts_done"], logs["log"]) == ([host], 0, {})
    one = _call(live, "/os-instance_usage_audit_log/2024-03-15 10:00:00").json()["instance_usage_audit_log"]
    assert (one["period_beginning"], one["period_ending"]) == ("2024-02-01 00:00:00", "2024-03-01 00:00:00")
    january = _call(live, "/os-instance_usage_audit_log/2024-01-15 10:00:00").json()["instance_usage_audit_log"]
    assert january["period_beginning"] == "2023-12-01 00:00:00"
    bad = _call(live, "/os-instance_usage_audit_log/invalid_time")
    assert bad.status_code == 400 and bad.json()["badRequest"]["message"].startswith("before_timestamp")
    assert _call(live, "/os-instance_usage_audit_log", user="alice").status_code == 403
    assert _call(live, "/os-instance_usage_audit_log/2024-01-15 10:00:00", user="alice").status_code == 403
