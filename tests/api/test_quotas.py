"""Quotas per project (issue #11 item 5): defaults from config.yaml, set by an admin through each service's API,
shown by the stock clients, enforced atomically with each service's own over-quota answer.

A server of its own (a module fixture) with small configured defaults: the limits set here stay out of the
other tests' way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from apitest import Live, names_field, qcow2_file, serve_root  # noqa: F401 (fixtures)
from test_serve import REPO

from api.config import parse_config, stable_id
from provisioner.layout import Layout
from provisioner.errors import InputError

DEMO = stable_id("project", "demo")  # alice's project
OTHER = stable_id("project", "other")  # bob's
CONFIG = """quotas:
  compute: {instances: 7, cores: 12}
  volume: {gigabytes: 50}
  network: {network: 4, security_group: 9}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_root(tmp_path_factory.mktemp("quotas") / "root", config=CONFIG) as server:
        yield server


def _call(live: Live, method: str, user: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, headers={"X-Auth-Token": live.token(user)},
                            timeout=120)


def _set(live: Live, path: str, body: dict[str, Any]) -> None:
    resp = _call(live, "PUT", "admin", path, body)
    assert resp.status_code == 200, resp.text


def _reset(live: Live) -> None:
    for path, status in ((f"/compute/v2.1/os-quota-sets/{DEMO}", 202), (f"/volume/v3/os-quota-sets/{DEMO}", 200),
                         (f"/network/v2.0/quotas/{DEMO}", 204)):
        assert _call(live, "DELETE", "admin", path).status_code == status


# -- the configured defaults, and the stock clients ------------------------------------------------------


def test_stock_clients_show_the_configured_defaults(live: Live) -> None:
    defaults = {q["Resource"]: q["Limit"] for q in live.osc("alice", "quota", "show", "--default", "-f", "json")}
    mine = {q["Resource"]: q["Limit"] for q in live.osc("alice", "quota", "show", "-f", "json")}
    for shown in (defaults, mine):
        assert shown["instances"] == 7 and shown["cores"] == 12 and shown["ram"] == 51200
        assert shown["gigabytes"] == 50 and shown["volumes"] == 10 and shown["snapshots"] == 10
        assert shown["networks"] == 4 and shown["security_groups"] == 9 and shown["ports"] == 500
    limits = {q["Name"]: q["Value"] for q in live.osc("alice", "limits", "show", "--absolute", "-f", "json")}
    assert limits["max_total_instances"] == 7 and limits["total_instances_used"] == 0
    assert limits["max_total_volume_gigabytes"] == 50 and limits["total_gigabytes_used"] == 0


def test_what_the_cli_requests(live: Live) -> None:
    """`openstack quota show` asks Cinder at the catalog's /volume/v3, without a project id in the URL."""
    done = live.osc("alice", "--debug", "quota", "show", check=False)
    assert done.returncode == 0, done.stderr
    for url in (f"/compute/v2.1/os-quota-sets/{DEMO}", f"/volume/v3/os-quota-sets/{DEMO}?usage=False",
                f"/network/v2.0/quotas/{DEMO}"):
        assert f"{live.url}{url}" in done.stderr


# -- setting quotas ----------------------------------------------------------------------------------------


def test_admin_sets_quotas_and_the_member_sees_them(live: Live) -> None:
    live.osc("admin", "quota", "set", "--instances", "3", "--ram", "4096", "--volumes", "4", "--networks", "2",
             "--secgroup-rules", "40", "demo")
    try:
        shown = {q["Resource"]: q["Limit"] for q in live.osc("alice", "quota", "show", "-f", "json")}
        assert (shown["instances"], shown["ram"], shown["volumes"], shown["networks"],
                shown["security_group_rules"]) == (3, 4096, 4, 2, 40)
        assert shown["cores"] == 12  # untouched: still the configured default
        admin = live.sdk("admin")
        admin.block_storage.update_quota_set(DEMO, snapshots=6)
        assert live.sdk("alice").block_storage.get_quota_set(DEMO).snapshots == 6
        assert admin.compute.get_quota_set(DEMO).instances == 3
        listed = _call(live, "GET", "admin", "/network/v2.0/quotas").json()["quotas"]
        assert [(q["project_id"], q["network"]) for q in listed] == [(DEMO, 2)]
        # bob's project keeps the defaults
        assert admin.compute.get_quota_set(OTHER).instances == 7
    finally:
        _reset(live)
    assert live.sdk("alice").compute.get_quota_set(DEMO).instances == 7
    assert _call(live, "GET", "admin", "/network/v2.0/quotas").json()["quotas"] == []


def test_a_member_reads_its_own_quotas_only_and_sets_none(live: Live) -> None:
    done = live.osc("alice", "quota", "set", "--instances", "50", DEMO, check=False)
    assert done.returncode != 0 and f"os-quota-sets/{DEMO}" in done.stderr and "403" in done.stderr
    for method, path, body in (
            ("PUT", f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 50}}),
            ("DELETE", f"/compute/v2.1/os-quota-sets/{DEMO}", None),
            ("PUT", f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"volumes": 50}}),
            ("DELETE", f"/volume/v3/os-quota-sets/{DEMO}", None),
            ("PUT", f"/network/v2.0/quotas/{DEMO}", {"quota": {"network": 50}}),
            ("DELETE", f"/network/v2.0/quotas/{DEMO}", None),
            ("GET", "/network/v2.0/quotas", None)):
        assert _call(live, method, "alice", path, body).status_code == 403, (method, path)
    for path in (f"/compute/v2.1/os-quota-sets/{DEMO}", f"/compute/v2.1/os-quota-sets/{DEMO}/detail",
                 f"/volume/v3/os-quota-sets/{DEMO}", f"/network/v2.0/quotas/{DEMO}",
                 f"/network/v2.0/quotas/{DEMO}/details", f"/compute/v2.1/limits?tenant_id={DEMO}"):
        assert _call(live, "GET", "alice", path).status_code == 200, path
        assert _call(live, "GET", "bob", path).status_code == 403, path
    assert live.sdk("alice").compute.get_quota_set(DEMO).instances == 7


@pytest.mark.parametrize(("path", "body", "field"), [
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": "many"}}, "quota_set.instances"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": -2}}, "quota_set.instances"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": "--1"}}, "quota_set.instances"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"ram": "\u0661\u0662"}}, "quota_set.ram"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"cores": 1 << 40}}, "quota_set.cores"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 5, "force": "yes"}}, "quota_set.force"),
    (f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 5, "x" * 5000: 1}}, "quota_set"),
    (f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"volumes": True}}, "quota_set.volumes"),
    (f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {}}, "quota_set"),
    (f"/network/v2.0/quotas/{DEMO}", {"quota": {"network": 2, "routers": 3}}, "quota"),
    (f"/network/v2.0/quotas/{DEMO}", {"quota": {"network": [2]}}, "quota.network"),
    (f"/compute/v2.1/os-quota-sets/{'n' * 300}", {"quota_set": {"instances": 5}}, ""),
])
def test_bad_quota_updates_are_refused_naming_the_field(live: Live, path: str, body: dict, field: str) -> None:
    resp = _call(live, "PUT", "admin", path, body)
    assert resp.status_code == 400, resp.text
    (error,) = resp.json().values()
    assert names_field(error["message"], field) if field else error["message"].startswith("Project ID 'nnn"), error
    assert len(error["message"]) < 400, error  # a cut of the key or id, never all of it
    assert live.sdk("alice").compute.get_quota_set(DEMO).instances == 7  # nothing half-written
    assert _call(live, "GET", "admin", "/network/v2.0/quotas").json()["quotas"] == []


def test_unknown_projects_are_refused(live: Live) -> None:
    for method, path in (("GET", "/compute/v2.1/os-quota-sets/{}"), ("DELETE", "/compute/v2.1/os-quota-sets/{}"),
                         ("GET", "/volume/v3/os-quota-sets/{}"), ("DELETE", "/volume/v3/os-quota-sets/{}"),
                         ("GET", "/network/v2.0/quotas/{}/details"), ("DELETE", "/network/v2.0/quotas/{}")):
        resp = _call(live, method, "admin", path.format("no-such-project"))
        assert resp.status_code == 400, (method, path, resp.text)


def test_a_limit_below_the_usage_is_refused_unless_forced(live: Live) -> None:
    for name in ("g1", "g2"):
        assert _call(live, "POST", "alice", "/network/v2.0/security-groups",
                     {"security_group": {"name": name}}).status_code == 201
    try:
        # the project has 3 groups: the two, and its `default` one
        resp = _call(live, "PUT", "admin", f"/network/v2.0/quotas/{DEMO}", {"quota": {"security_group": 2}})
        assert resp.status_code == 400
        assert "security_group must be greater than or equal to already used 3" in resp.json()["NeutronError"][
            "message"]
        _set(live, f"/network/v2.0/quotas/{DEMO}", {"quota": {"security_group": 2, "force": True}})
        details = _call(live, "GET", "alice", f"/network/v2.0/quotas/{DEMO}/details").json()["quota"]
        assert details["security_group"] == {"limit": 2, "used": 3, "reserved": 0}
    finally:
        _reset(live)
        for group in _call(live, "GET", "alice", "/network/v2.0/security-groups").json()["security_groups"]:
            if group["name"] != "default":
                assert _call(live, "DELETE", "alice", f"/network/v2.0/security-groups/{group['id']}").status_code == 204


def test_each_service_answers_updates_and_resets_in_its_own_words(live: Live) -> None:
    """What Nova's, Cinder's and Neutron's quota updates differ in: keys that are not quotas,
    the refusal of a limit below usage (and Cinder's exemption), the answer's body and the reset's status."""
    nova, cinder, neutron = (f"/compute/v2.1/os-quota-sets/{DEMO}", f"/volume/v3/os-quota-sets/{DEMO}",
                             f"/network/v2.0/quotas/{DEMO}")
    group = _call(live, "POST", "alice", "/compute/v2.1/os-server-groups",
                  {"server_group": {"name": "counted", "policies": ["affinity"]}})
    assert group.status_code == 200, group.text
    volume = _call(live, "POST", "alice", "/volume/v3/volumes", {"volume": {"size": 1, "name": "counted"}})
    assert volume.status_code == 202, volume.text
    try:
        resp = _call(live, "PUT", "admin", nova, {"quota_set": {"server_groups": 0}})
        assert resp.json() == {"badRequest": {"code": 400, "message": (
            "Quota limit 0 for server_groups must be greater than or equal to already used and reserved 1.")}}
        resp = _call(live, "PUT", "admin", nova, {"quota_set": {"server_groups": 0, "force": True}})
        assert resp.status_code == 200 and resp.json()["quota_set"]["server_groups"] == 0
        assert "id" not in resp.json()["quota_set"]

        resp = _call(live, "PUT", "admin", cinder, {"quota_set": {"volumes": 0, "force": True}})
        assert resp.json()["badRequest"]["message"] == "quota_set: unknown field 'force'"
        resp = _call(live, "PUT", "admin", cinder, {"quota_set": {"volumes": 0}})
        assert resp.json() == {"badRequest": {"code": 400, "message": (
            "Quota volumes limit must be equal or greater than existing resources. Current usage is 1 and the "
            "requested limit is 0.")}}
        resp = _call(live, "PUT", "admin", cinder, {"quota_set": {"id": DEMO, "tenant_id": DEMO}})
        assert resp.json() == {"badRequest": {"code": 400, "message": "quota_set: name at least one quota to set"}}
        resp = _call(live, "PUT", "admin", cinder, {"quota_set": {"id": DEMO, "per_volume_gigabytes": 0}})
        assert resp.status_code == 200 and resp.json()["quota_set"]["per_volume_gigabytes"] == 0
        assert "id" not in resp.json()["quota_set"]

        resp = _call(live, "PUT", "admin", neutron, {"quota": {"network": 3, "check_limit": True}})
        assert resp.status_code == 200 and resp.json()["quota"]["network"] == 3
        assert _call(live, "PUT", "admin", "/network/v2.0/quotas", {"quota": {"network": 3}}).status_code == 405
        assert _call(live, "DELETE", "admin", "/network/v2.0/quotas").status_code == 405
    finally:
        _reset(live)  # the statuses: Nova 202, Cinder 200, Neutron 204
        assert _call(live, "DELETE", "alice", f"/compute/v2.1/os-server-groups/{group.json()['server_group']['id']}"
                     ).status_code == 204
        storage = live.sdk("alice").block_storage
        storage.delete_volume(storage.wait_for_status(storage.get_volume(volume.json()["volume"]["id"]),
                                                      "available", wait=120))


ALICE = stable_id("user", "alice")
NOVA_2_36, NOVA_2_50, NOVA_2_57 = ({"X-OpenStack-Nova-API-Version": v} for v in ("2.36", "2.50", "2.57"))


def _nova(live: Live, method: str, path: str, body: Any = None, user: str = "admin",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}/compute/v2.1{path}", json=body, timeout=120,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def test_nova_per_user_quotas_within_the_project(live: Live) -> None:
    """?user_id= on os-quota-sets: a user's own limits over the project's, none above them, reset apart."""
    mine = f"/os-quota-sets/{DEMO}?user_id={ALICE}"
    _set(live, f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"ram": 5120}})
    try:
        resp = _nova(live, "PUT", mine, {"quota_set": {"ram": "2048", "instances": 2}})
        assert resp.status_code == 200, resp.text
        assert (resp.json()["quota_set"]["ram"], resp.json()["quota_set"]["instances"]) == (2048, 2)
        shown = _nova(live, "GET", mine).json()["quota_set"]
        assert (shown["id"], shown["ram"], shown["instances"], shown["cores"]) == (DEMO, 2048, 2, 12)
        detail = _nova(live, "GET", f"/os-quota-sets/{DEMO}/detail?user_id={ALICE}").json()["quota_set"]
        assert detail["ram"] == {"limit": 2048, "in_use": 0, "reserved": 0}
        project = _nova(live, "GET", f"/os-quota-sets/{DEMO}").json()["quota_set"]
        assert (project["ram"], project["instances"]) == (5120, 7)  # the project's own are untouched
        for body, message in (({"ram": 6000}, "Quota limit 6000 for ram must be less than or equal to 5120."),
                              ({"cores": -1}, "Quota limit -1 for cores must be less than or equal to 12.")):
            resp = _nova(live, "PUT", mine, {"quota_set": body})
            assert resp.json() == {"badRequest": {"code": 400, "message": message}}
        assert _nova(live, "PUT", mine, {"quota_set": {"ram": 1}}, user="alice").status_code == 403
        assert _nova(live, "DELETE", mine, user="alice").status_code == 403
        assert _nova(live, "DELETE", mine).status_code == 202
        assert _nova(live, "GET", mine).json()["quota_set"]["ram"] == 5120  # back to the project's
        assert _nova(live, "PUT", mine, {"quota_set": {"ram": 1024}}).status_code == 200
    finally:
        _reset(live)
    assert _nova(live, "GET", mine).json()["quota_set"]["ram"] == 51200  # a project's reset drops its users' too


def test_nova_microversions_drop_quota_resources(live: Live) -> None:
    """2.36 drops the nova-network resources from os-quota-sets, 2.57 the injected-file ones: not shown,
    not settable."""
    path = f"/os-quota-sets/{DEMO}"
    assert {"fixed_ips", "injected_files"} <= set(_nova(live, "GET", path).json()["quota_set"])
    at_236 = _nova(live, "GET", path, headers=NOVA_2_36).json()["quota_set"]
    assert "fixed_ips" not in at_236 and "security_groups" not in at_236 and at_236["injected_files"] == 5
    for suffix in ("", "/detail", "/defaults"):
        at_257 = _nova(live, "GET", path + suffix, headers=NOVA_2_57).json()["quota_set"]
        assert not {"fixed_ips", "injected_files", "injected_file_path_bytes"} & set(at_257), suffix
        assert {"instances", "server_groups", "id"} <= set(at_257), suffix
    resp = _nova(live, "PUT", path, {"quota_set": {"floating_ips": 5}}, headers=NOVA_2_36)
    assert resp.status_code == 400 and "quota_set" in resp.json()["badRequest"]["message"]
    assert "floating_ips" in resp.json()["badRequest"]["message"]
    resp = _nova(live, "PUT", path, {"quota_set": {"injected_files": 5}}, headers=NOVA_2_57)
    assert resp.status_code == 400 and "injected_files" in resp.json()["badRequest"]["message"]
    assert _nova(live, "GET", path).json()["quota_set"]["floating_ips"] == -1  # nothing was set


def test_nova_default_quota_class_is_every_projects_defaults(live: Live) -> None:
    """os-quota-class-sets/default: an admin's change is what projects without their own limits get."""
    default = _nova(live, "GET", "/os-quota-class-sets/default").json()["quota_class_set"]
    assert (default.pop("id"), default["instances"], default["cores"], default["fixed_ips"]) == ("default", 7, 12, -1)
    assert "server_groups" not in default  # shown from 2.50 on, as Nova
    assert _nova(live, "GET", "/os-quota-class-sets/default", user="alice").status_code == 403
    assert _nova(live, "PUT", "/os-quota-class-sets/default", {"quota_class_set": {"instances": 9}},
                 user="alice").status_code == 403
    _set(live, f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 3}})
    try:
        resp = _nova(live, "PUT", "/os-quota-class-sets/default", {"quota_class_set": {"instances": 9, "ram": "100"}})
        assert resp.status_code == 200, resp.text
        assert "id" not in resp.json()["quota_class_set"] and resp.json()["quota_class_set"]["instances"] == 9
        assert live.sdk("admin").compute.get_quota_set(OTHER).instances == 9
        assert _nova(live, "GET", f"/os-quota-sets/{OTHER}/defaults").json()["quota_set"]["ram"] == 100
        assert live.sdk("admin").compute.get_quota_set(DEMO).instances == 3  # its own limit stays
        at_250 = _nova(live, "GET", "/os-quota-class-sets/default", headers=NOVA_2_50).json()["quota_class_set"]
        assert at_250["server_groups"] == 10 and "fixed_ips" not in at_250 and "injected_files" in at_250
        at_257 = _nova(live, "PUT", "/os-quota-class-sets/default", {"quota_class_set": {"cores": 30}},
                       headers=NOVA_2_57).json()["quota_class_set"]
        assert at_257["cores"] == 30 and "injected_files" not in at_257
        for name, body, headers, field in (("default", {"instances": "many"}, None, "quota_class_set.instances"),
                                           ("default", {"fixed_ips": 3}, NOVA_2_50, "quota_class_set"),
                                           ("default", {"injected_files": 3}, NOVA_2_57, "quota_class_set"),
                                           ("c" * 256, {"instances": 3}, None, "quota_class_name")):
            resp = _nova(live, "PUT", f"/os-quota-class-sets/{name}", {"quota_class_set": body}, headers=headers)
            assert resp.status_code == 400 and names_field(resp.json()["badRequest"]["message"], field), body
    finally:
        _nova(live, "PUT", "/os-quota-class-sets/default",
              {"quota_class_set": {"instances": 7, "ram": 51200, "cores": 12}})
        _reset(live)
    assert live.sdk("admin").compute.get_quota_set(OTHER).instances == 7


def test_cinder_default_quota_class_with_volume_type_quotas(live: Live) -> None:
    """Cinder's os-quota-class-sets: the default class, per-volume-type resources included, is the defaults."""
    url = f"{live.url}/volume/v3/os-quota-class-sets/default"
    admin = {"X-Auth-Token": live.token("admin")}
    shown = requests.get(url, headers=admin, timeout=120).json()["quota_class_set"]
    assert (shown["id"], shown["gigabytes"], shown["volumes___DEFAULT__"]) == ("default", 50, -1)
    alice = {"X-Auth-Token": live.token("alice")}
    assert requests.get(url, headers=alice, timeout=120).status_code == 403
    assert requests.put(url, json={"quota_class_set": {"volumes": 1}}, headers=alice, timeout=120).status_code == 403
    vtype = requests.post(f"{live.url}/volume/v3/types", json={"volume_type": {"name": "classy"}}, headers=admin,
                          timeout=120).json()["volume_type"]
    try:
        body = {"gigabytes": 60, "volumes_classy": "3", "snapshots_gone": 4}
        resp = requests.put(url, json={"quota_class_set": body}, headers=admin, timeout=120)
        assert resp.status_code == 200, resp.text
        updated = resp.json()["quota_class_set"]
        assert "id" not in updated and "snapshots_gone" not in updated  # an unknown key is passed over
        assert (updated["gigabytes"], updated["volumes_classy"], updated["gigabytes_classy"]) == (60, 3, -1)
        defaults = requests.get(f"{live.url}/volume/v3/os-quota-sets/{OTHER}/defaults", headers=admin,
                                timeout=120).json()["quota_set"]
        assert (defaults["gigabytes"], defaults["volumes_classy"]) == (60, 3)
        assert live.sdk("admin").block_storage.get_quota_set(OTHER).gigabytes == 60
        resp = requests.put(url, json={"quota_class_set": {"volumes": -2}}, headers=admin, timeout=120)
        assert resp.status_code == 400 and resp.json()["badRequest"]["message"].startswith(
            "quota_class_set.volumes: "), resp.text
        resp = requests.put(url.replace("default", "c" * 256), json={"quota_class_set": {"volumes": 3}},
                            headers=admin, timeout=120)
        assert resp.status_code == 400 and resp.json()["badRequest"]["message"].startswith(
            "quota_class_name: "), resp.text
    finally:
        requests.put(url, json={"quota_class_set": {"gigabytes": 50, "volumes_classy": -1}}, headers=admin,
                     timeout=120)
        requests.delete(f"{live.url}/volume/v3/types/{vtype['id']}", headers=admin, timeout=120)
    assert live.sdk("admin").block_storage.get_quota_set(OTHER).gigabytes == 50


def test_config_quotas_are_checked_naming_the_key() -> None:
    assert parse_config({"quotas": {"volume": {"volumes": -1}}}, "config.yaml").quotas.of("volume")["volumes"] == -1
    for quotas, key in (({"compute": {"instances": "10"}}, "quotas.compute.instances"),
                        ({"compute": {"instances": -5}}, "quotas.compute.instances"),
                        ({"compute": {"cores": True}}, "quotas.compute.cores"),
                        ({"volume": {"volume": 3}}, "quotas.volume"),
                        ({"storage": {}}, "storage"),
                        ({"network": [1]}, "quotas.network"),
                        ([1], "quotas")):
        with pytest.raises(InputError, match=key.replace(".", r"\.")):
            parse_config({"quotas": quotas}, "config.yaml")


# -- enforcement -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(live: Live, qcow2_file: Path) -> str:
    return live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "quota-img",
                    "-f", "json")["id"]


def test_nova_refuses_over_quota_with_403(live: Live, image: str) -> None:
    _set(live, f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 1, "key_pairs": 1}})
    try:
        server = {"server": {"name": "q1", "imageRef": image, "flavorRef": "1"}}
        assert _call(live, "POST", "alice", "/compute/v2.1/servers", server).status_code == 202
        resp = _call(live, "POST", "alice", "/compute/v2.1/servers", {"server": {**server["server"], "name": "q2"}})
        assert resp.status_code == 403
        assert resp.json() == {"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, "
                                                                     "but already used 1 of 1 instances"}}
        _set(live, f"/compute/v2.1/os-quota-sets/{DEMO}", {"quota_set": {"instances": 5, "cores": 2}})
        bigger = {"server": {"name": "q3", "imageRef": image, "flavorRef": "3"}}  # m1.medium: 2 vCPUs
        resp = _call(live, "POST", "alice", "/compute/v2.1/servers", bigger)
        assert resp.status_code == 403
        assert resp.json()["forbidden"]["message"] == ("Quota exceeded for cores: Requested 2, but already used 1 "
                                                       "of 2 cores")
        assert [s["name"] for s in live.sdk("alice").compute.servers()] == ["q1"]
        limits = _call(live, "GET", "alice", "/compute/v2.1/limits").json()["limits"]["absolute"]
        assert (limits["totalInstancesUsed"], limits["totalCoresUsed"], limits["totalRAMUsed"]) == (1, 1, 512)

        assert _call(live, "POST", "alice", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k1"}}).status_code \
            == 200
        resp = _call(live, "POST", "alice", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k2"}})
        assert resp.status_code == 403
        assert resp.json() == {"forbidden": {"code": 403, "message": "Quota exceeded, too many key pairs."}}
        assert [k.name for k in live.sdk("alice").compute.keypairs()] == ["k1"]
    finally:
        _reset(live)


def test_cinder_refuses_over_quota_with_413(live: Live) -> None:
    _set(live, f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"volumes": 2, "gigabytes": 5, "snapshots": 1,
                                                                  "per_volume_gigabytes": 4}})
    try:
        first = _call(live, "POST", "alice", "/volume/v3/volumes", {"volume": {"size": 2}})
        assert first.status_code == 202, first.text
        for body, message in (
                ({"size": 5}, "VolumeSizeExceedsLimit: Requested volume size 5G is larger than maximum allowed "
                              "limit 4G."),
                ({"size": 4}, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                              "gigabytes quota. Requested 4G, quota is 5G and 2G has been consumed.")):
            resp = _call(live, "POST", "alice", "/volume/v3/volumes", {"volume": body})
            assert resp.status_code == 413 and resp.headers["Retry-After"] == "0"
            assert resp.json() == {"overLimit": {"code": 413, "message": message, "retryAfter": "0"}}
        assert _call(live, "POST", "alice", "/volume/v3/volumes", {"volume": {"size": 1}}).status_code == 202
        resp = _call(live, "POST", "alice", "/volume/v3/volumes", {"volume": {"size": 1}})
        assert resp.json() == {"overLimit": {"code": 413, "retryAfter": "0", "message": (
            "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.")}}
        volume = live.sdk("alice").block_storage.get_volume(first.json()["volume"]["id"])
        live.sdk("alice").block_storage.wait_for_status(volume, "available", wait=120)
        snapshot = {"snapshot": {"volume_id": volume.id}}
        _set(live, f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"gigabytes": 4}})
        resp = _call(live, "POST", "alice", "/volume/v3/snapshots", snapshot)  # 3 GiB used, 2 more: 5 of 4
        assert resp.status_code == 413
        assert resp.json()["overLimit"]["message"].startswith("VolumeSizeExceedsAvailableQuota: ")
        _set(live, f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"gigabytes": 100}})
        assert _call(live, "POST", "alice", "/volume/v3/snapshots", snapshot).status_code == 202
        resp = _call(live, "POST", "alice", "/volume/v3/snapshots", snapshot)
        assert resp.json()["overLimit"]["message"] == ("SnapshotLimitExceeded: Maximum number of snapshots allowed "
                                                       "(1) exceeded")
        usage = live.sdk("alice").block_storage.get_quota_set(DEMO, usage=True).usage
        assert (usage["volumes"], usage["gigabytes"], usage["snapshots"]) == (2, 5, 1)
        done = live.osc("alice", "volume", "create", "--size", "1", "refused", check=False)
        assert done.returncode != 0 and "VolumeLimitExceeded" in done.stderr
    finally:
        _reset(live)


def test_neutron_refuses_over_quota_with_409(live: Live) -> None:
    _set(live, f"/network/v2.0/quotas/{DEMO}", {"quota": {"network": 1, "subnet": 0, "security_group_rule": 4}})
    try:
        network = _call(live, "POST", "alice", "/network/v2.0/networks", {"network": {"name": "n1"}})
        assert network.status_code == 201, network.text
        for path, body, resource in (
                ("/network/v2.0/networks", {"network": {"name": "n2"}}, "network"),
                ("/network/v2.0/subnets", {"subnet": {"network_id": network.json()["network"]["id"],
                                                      "cidr": "10.77.0.0/24", "ip_version": 4}}, "subnet")):
            resp = _call(live, "POST", "alice", path, body)
            assert resp.status_code == 409
            assert resp.json() == {"NeutronError": {"type": "OverQuota", "detail": "",
                                                    "message": f"Quota exceeded for resources: ['{resource}']."}}
        # the default group's four rules fill the rule quota
        group = live.sdk("alice").network.find_security_group("default", project_id=DEMO)
        resp = _call(live, "POST", "alice", "/network/v2.0/security-group-rules",
                     {"security_group_rule": {"security_group_id": group.id, "direction": "ingress"}})
        assert resp.status_code == 409 and resp.json()["NeutronError"]["type"] == "OverQuota"
        done = live.osc("alice", "network", "create", "n3", check=False)
        assert done.returncode != 0 and "Quota exceeded for resources: ['network']" in done.stderr
        assert [n.name for n in live.sdk("alice").network.networks(project_id=DEMO)] == ["n1"]
    finally:
        _reset(live)


# -- atomicity ---------------------------------------------------------------------------------------------


def _race(live: Live, path: str, bodies: list[dict[str, Any]], token: str | None = None) -> list[int]:
    """POST every body at once, one thread each (released together), as alice (or with `token`); the statuses."""
    token = token or live.token("alice")
    start = threading.Barrier(len(bodies))
    statuses: list[int] = [0] * len(bodies)

    def create(index: int) -> None:
        start.wait()
        try:
            statuses[index] = requests.post(f"{live.url}{path}", json=bodies[index],
                                            headers={"X-Auth-Token": token}, timeout=300).status_code
        except requests.ConnectionError as exc:
            errors.append(exc)

    errors: list[Exception] = []

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    return statuses


def test_parallel_creates_leave_exactly_the_quota(live: Live) -> None:
    _set(live, f"/volume/v3/os-quota-sets/{DEMO}", {"quota_set": {"volumes": 3}})
    _set(live, f"/network/v2.0/quotas/{DEMO}", {"quota": {"network": 2}})
    try:
        volumes_before = len(list(live.sdk("alice").block_storage.volumes()))
        assert volumes_before <= 3
        statuses = _race(live, "/volume/v3/volumes", [{"volume": {"size": 1, "name": f"race{i}"}} for i in range(12)])
        assert sorted(statuses) == [202] * (3 - volumes_before) + [413] * (9 + volumes_before)
        assert len(list(live.sdk("alice").block_storage.volumes())) == 3

        networks_before = len(list(live.sdk("alice").network.networks(project_id=DEMO)))
        assert networks_before <= 2
        statuses = _race(live, "/network/v2.0/networks", [{"network": {"name": f"race{i}"}} for i in range(8)])
        assert sorted(statuses) == [201] * (2 - networks_before) + [409] * (6 + networks_before)
        assert len(list(live.sdk("alice").network.networks(project_id=DEMO))) == 2

        # Cheap creates (no Terraform), a few rounds: a check outside the inserting transaction loses some.
        for round_ in range(4):
            groups = _call(live, "GET", "alice", "/network/v2.0/security-groups").json()["security_groups"]
            _set(live, f"/network/v2.0/quotas/{DEMO}", {"quota": {"security_group": len(groups) + 2}})
            statuses = _race(live, "/network/v2.0/security-groups",
                             [{"security_group": {"name": f"race{round_}-{i}"}} for i in range(12)])
            assert sorted(statuses) == [201] * 2 + [409] * 10
    finally:
        _reset(live)


def test_parallel_creates_across_worker_processes(tmp_path: Path) -> None:
    """`provision serve --workers 2`: the processes share state.db, and SQLite's write lock holds between them."""
    root = tmp_path / "root"
    process = subprocess.Popen([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0",
                                "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    try:
        assert process.stdout is not None
        auth_url = ""
        while not auth_url:
            line = process.stdout.readline()
            assert line, f"serve exited ({process.wait()})"
            auth_url = line.strip().removeprefix("export OS_AUTH_URL=") if "OS_AUTH_URL=" in line else ""
        url = auth_url.removesuffix("/identity")
        password = (root / "api" / "admin-password").read_text().strip()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        issued = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
        token, project = issued.headers["X-Subject-Token"], issued.json()["token"]["project"]["id"]
        headers = {"X-Auth-Token": token}
        server = Live(Layout(root), url)
        # the project's `default` group is made on first use (a listing), and counts
        assert requests.get(f"{url}/network/v2.0/security-groups", headers=headers, timeout=30).status_code == 200
        for round_ in range(3):
            details = requests.get(f"{url}/network/v2.0/quotas/{project}/details", headers=headers, timeout=30)
            used = details.json()["quota"]["security_group"]["used"]
            limit = requests.put(f"{url}/network/v2.0/quotas/{project}", headers=headers, timeout=30,
                                 json={"quota": {"security_group": used + 2}})
            assert limit.status_code == 200, limit.text
            statuses = _race(server, "/network/v2.0/security-groups",
                             [{"security_group": {"name": f"w{round_}-{i}"}} for i in range(12)], token)
            assert sorted(statuses) == [201] * 2 + [409] * 10
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
