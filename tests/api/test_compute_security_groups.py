"""Nova's security-group proxy over the Neutron records, a server's groups and availability zones (issue #12)."""

from __future__ import annotations

from typing import Any

import requests
from apitest import Live, live, names_field  # noqa: F401 (fixture)

OLD = {"OpenStack-API-Version": "compute 2.35"}


def _call(live: Live, method: str, path: str, body: Any = None, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def test_groups_and_rules_through_nova_are_neutrons(live: Live) -> None:
    made = _call(live, "POST", "/os-security-groups", {"security_group": {"name": "nova-sg", "description": "d"}})
    assert made.status_code == 200, made.text
    group = made.json()["security_group"]
    assert (group["name"], group["description"], group["rules"]) == ("nova-sg", "d", [])
    neutron = live.osc("alice", "security", "group", "show", group["id"], "-f", "json")
    assert neutron["name"] == "nova-sg", "the same record as Neutron's"
    assert "nova-sg" in {g["name"] for g in _call(live, "GET", "/os-security-groups").json()["security_groups"]}

    rule = _call(live, "POST", "/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "10.0.0.0/8"}})
    assert rule.status_code == 200, rule.text
    shown = rule.json()["security_group_rule"]
    assert (shown["from_port"], shown["to_port"], shown["ip_range"]) == (22, 22, {"cidr": "10.0.0.0/8"})
    rules = _call(live, "GET", f"/os-security-groups/{group['id']}").json()["security_group"]["rules"]
    assert [r["id"] for r in rules] == [shown["id"]]

    renamed = _call(live, "PUT", f"/os-security-groups/{group['id']}",
                    {"security_group": {"name": "nova-sg2", "description": "e"}})
    assert renamed.json()["security_group"]["name"] == "nova-sg2"
    assert _call(live, "DELETE", f"/os-security-group-rules/{shown['id']}").status_code == 202
    assert _call(live, "DELETE", f"/os-security-groups/{group['id']}").status_code == 202
    assert _call(live, "GET", f"/os-security-groups/{group['id']}").status_code == 404
    assert _call(live, "GET", "/os-security-groups", headers={"OpenStack-API-Version": "compute 2.36"}
                 ).status_code == 404, "Nova removed the proxy at 2.36"
    assert _call(live, "GET", "/os-security-groups", headers=OLD).status_code == 200


def test_bad_group_and_rule_requests_are_named(live: Live) -> None:
    group = _call(live, "POST", "/os-security-groups",
                  {"security_group": {"name": "checked", "description": ""}}).json()["security_group"]
    cases = [
        ("/os-security-groups", {"security_group": {"name": "no-description"}}, "security_group.description"),
        ("/os-security-groups", {"security_group": {"name": 5, "description": ""}}, "security_group.name"),
        ("/os-security-group-rules", {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "gre",
                                                             "from_port": 1, "to_port": 2}},
         "security_group_rule.ip_protocol"),
        ("/os-security-group-rules", {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                                             "from_port": 90, "to_port": 80}},
         "security_group_rule.from_port"),
        ("/os-security-group-rules", {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                                             "from_port": "x" * 99, "to_port": 80}},
         "security_group_rule.from_port"),
        ("/os-security-group-rules", {"security_group_rule": {"parent_group_id": "not-an-id", "ip_protocol": "tcp",
                                                             "from_port": 1, "to_port": 2}},
         "security_group_rule.parent_group_id"),
        ("/os-security-group-rules", {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                                             "from_port": 1, "to_port": 2, "cidr": "10.0.0.300/8"}},
         "security_group_rule.cidr"),
    ]
    for path, body, field in cases:
        resp = _call(live, "POST", path, body)
        assert resp.status_code == 400 and names_field(resp.json()["badRequest"]["message"], field), resp.text
        assert len(resp.content) < 400
    missing = _call(live, "POST", "/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": "00000000-0000-4000-8000-000000000000", "ip_protocol": "tcp", "from_port": 1,
        "to_port": 2}})
    assert missing.status_code == 404
    rules = _call(live, "GET", f"/os-security-groups/{group['id']}").json()["security_group"]["rules"]
    assert rules == [], "nothing was written"
    rule = {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 5, "to_port": 6, "cidr": "10.2.3.124/24"}
    assert _call(live, "POST", "/os-security-group-rules", {"security_group_rule": rule}).status_code == 200
    again = _call(live, "POST", "/os-security-group-rules", {"security_group_rule": rule})
    assert again.status_code == 400 and "already exists" in again.json()["badRequest"]["message"]
    other = _call(live, "GET", f"/os-security-groups/{group['id']}", user="bob")
    assert other.status_code == 404, "another project's group"


def test_a_delete_without_a_group_id_is_nova_404(live: Live) -> None:
    """Tempest's `DELETE os-security-groups/`: Nova's router has no route for it, a 404 (not falcon's 405)."""
    for path in ("/os-security-groups/", "/os-security-groups"):
        resp = _call(live, "DELETE", path)
        assert resp.status_code == 404, resp.text
        assert resp.json() == {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}
    assert _call(live, "GET", "/os-security-groups").status_code == 200  # the groups are still there


def test_availability_zones(live: Live) -> None:
    zones = _call(live, "GET", "/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    assert _call(live, "GET", "/os-availability-zone/detail").status_code == 403
    detail = _call(live, "GET", "/os-availability-zone/detail", user="admin").json()["availabilityZoneInfo"][0]
    assert all("nova-compute" in services for services in detail["hosts"].values())
    assert [z.name for z in live.sdk("alice").compute.availability_zones()] == ["nova"]


def test_services_list_the_compute_host(live: Live) -> None:
    assert _call(live, "GET", "/os-services").status_code == 403
    services = _call(live, "GET", "/os-services", user="admin").json()["services"]
    service = services[0]
    assert (service["binary"], service["state"], service["id"], service["zone"]) == ("nova-compute", "up", 1, "nova")
    assert [(s["binary"], s["zone"]) for s in services[1:]] == [("nova-scheduler", "internal"),
                                                                ("nova-conductor", "internal")]
    (found,) = _call(live, "GET", f"/os-services?host={service['host']}&binary=nova-compute",
                     user="admin").json()["services"]
    assert {**found, "updated_at": None} == {**service, "updated_at": None}, "updated_at: the time of asking"
    assert _call(live, "GET", "/os-services?binary=nova-api", user="admin").json()["services"] == []
    assert _call(live, "GET", "/os-services?host=elsewhere", user="admin").json()["services"] == []
    new = _call(live, "GET", "/os-services", user="admin",
                headers={"OpenStack-API-Version": "compute 2.53"}).json()["services"]
    assert all(isinstance(s["id"], str) and s["forced_down"] is False for s in new)
    assert len({s["id"] for s in new}) == 3
    assert [s.binary for s in live.sdk("admin").compute.services()] == ["nova-compute", "nova-scheduler",
                                                                         "nova-conductor"]


def test_hypervisors_report_the_libvirt_host(live: Live) -> None:
    assert _call(live, "GET", "/os-hypervisors").status_code == 403
    (listed,) = _call(live, "GET", "/os-hypervisors", user="admin").json()["hypervisors"]
    (detail,) = _call(live, "GET", "/os-hypervisors/detail", user="admin").json()["hypervisors"]
    assert detail["vcpus"] > 0 and detail["memory_mb"] > 0 and detail["state"] == "up"
    shown = _call(live, "GET", f"/os-hypervisors/{listed['id']}", user="admin").json()["hypervisor"]
    assert shown["hypervisor_hostname"] == listed["hypervisor_hostname"]
    assert _call(live, "GET", "/os-hypervisors/999", user="admin").status_code == 404
    stats = _call(live, "GET", "/os-hypervisors/statistics", user="admin").json()["hypervisor_statistics"]
    assert stats["count"] == 1 and stats["vcpus"] == detail["vcpus"]
    assert "up" in _call(live, "GET", f"/os-hypervisors/{listed['id']}/uptime", user="admin").json()[
        "hypervisor"]["uptime"]
    name = listed["hypervisor_hostname"]
    assert _call(live, "GET", f"/os-hypervisors/{name}/search", user="admin").json()["hypervisors"]
    assert _call(live, "GET", "/os-hypervisors/no-such-host/search", user="admin").status_code == 404
    assert "servers" in _call(live, "GET", f"/os-hypervisors/{name}/servers", user="admin").json()["hypervisors"][0]
    new = _call(live, "GET", "/os-hypervisors/detail", user="admin",
                headers={"OpenStack-API-Version": "compute 2.53"}).json()["hypervisors"][0]
    assert isinstance(new["id"], str) and isinstance(new["cpu_info"], dict)
    assert [h.name for h in live.sdk("admin").compute.hypervisors()] == [name]
