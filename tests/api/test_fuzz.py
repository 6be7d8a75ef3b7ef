"""Fuzzing the live API from its OpenAPI description (api/openapi.yaml) with schemathesis: no 5xx, ever.

Every operation is sent generated input (valid and invalid, few examples each:
the run must stay short on two cores) as a member and as an admin, on a server
and root of its own; requests naming objects (in the path or the body) are sent
again with the ids of real ones, so the fuzzed input reaches past the 404.
Every answer must be below 500, declared, and an error must have its service's
error body. Hand-made hostile input follows: malformed JSON, oversized bodies,
path traversal in ids and names, and a check that nothing was written outside
the root.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from falcon import inspect
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

import api
from api.app import create_api
from api.config import stable_id
from api.validation import spec_schemas
from api.volume.microversion import MAX as CINDER_MAX
from api.web.routes import PATHS as WEB_PAGES
from provisioner.images import ImageStore

from apitest import Live, names_field, qcow2_file, serve_root  # noqa: F401 (fixtures)

SPEC = Path(api.__file__).parent / "openapi.yaml"
# Glance's JSON-patch media types are JSON documents.
for _media in ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"):
    schemathesis.serializer.alias(_media, "application/json")
# Few examples per operation (the run must stay short on two cores); fewer still, and no
# coverage phase (its boundary values), where a success builds something through Terraform.
COSTLY = ["createNetwork", "createVolume", "createSnapshot"]
schema = schemathesis.openapi.from_path(SPEC, config=schemathesis.Config.from_dict({
    "generation": {"max-examples": 8},
    "operations": [{"include-operation-id": COSTLY, "generation": {"max-examples": 3},
                    "phases": {"coverage": {"enabled": False}}}]}))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Where api/validation.py checks the body against the spec, a body the spec refuses must be refused (4xx):
# the code cannot accept more than the spec says. (positive_data_acceptance does not hold: semantic checks
# in code refuse some bodies the schema allows with 400, as the real services do, e.g. a size above
# max_volume_size or a second source.)
VALIDATED = set(spec_schemas())
USERS = ("alice", "admin")
OUTSIDER = "bob"  # a member of another project
# Generated names carry it, so whatever escaped the root can be found.
MARK = "zzfuzz"
PATCH_MEDIA = "application/openstack-images-v2.1-json-patch"
CINDER_LATEST = str(CINDER_MAX)


def test_every_route_is_described(fuzzed: Live) -> None:
    """Every (path, method) the falcon app serves is in openapi.yaml, and nothing more."""
    built = create_api(fuzzed.layout)
    try:
        # The status page's HTML routes are no OpenStack operations: the spec does not describe them.
        served = {(route.path, method.method.lower()) for route in inspect.inspect_routes(built.app)
                  if route.path not in WEB_PAGES for method in route.methods if not method.internal}
    finally:
        built.tasks.shutdown()
    described = {(path, method) for path, item in yaml.safe_load(SPEC.read_text())["paths"].items()
                 for method in item if method != "parameters"}
    assert served - described == set(), "routes missing from api/openapi.yaml"
    assert described - served == set(), "api/openapi.yaml describes routes the app does not serve"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server of its own: what the fuzzing leaves behind stays out of the other tests' way."""
    with serve_root(tmp_path_factory.mktemp("fuzz") / "root", config=FUZZ_QUOTAS) as server:
        yield server


# The fuzzing creates many Neutron objects as alice and admin, and test_hostile_names more after it:
# unlimited there (the other quotas keep their defaults, and their refusals are fuzzed too).
FUZZ_QUOTAS = "quotas:\n  network: {network: -1, subnet: -1, security_group: -1, security_group_rule: -1}\n"


# Body members that name another object -> the Known attribute holding a real one.
BODY_IDS = {"network_id": "network", "uuid": "default_network", "security_group_id": "group",
            "remote_group_id": "group", "key_name": "keypair", "flavorRef": "flavor", "imageRef": "image",
            "volume_id": "volume", "volumeId": "volume"}
# Each real server build costs seconds of CPU: real image ids stop after this many were accepted.
SERVER_BUDGET = 2


@dataclass
class Known:
    """Real objects of alice's, whose ids replace the generated ones in a second request."""

    ids: dict[str, str]          # path parameter -> id
    items: dict[str, str]        # Neutron collection -> id of one of its items
    body_ids: dict[str, str]     # BODY_IDS value -> id
    servers_left: int = SERVER_BUDGET

    def path_parameters(self, path: str, generated: dict[str, str]) -> dict[str, str]:
        """The generated path parameters with every id replaced by a real one."""
        real = dict(generated)
        for name in generated:
            if name == "item_id":
                real[name] = self.items[path.split("/")[3]]
            elif name in self.ids:
                real[name] = self.ids[name]
        return real

    def body(self, generated: Any) -> Any:
        """The generated body with every member naming an object replaced by a real one."""
        if isinstance(generated, list):
            return [self.body(v) for v in generated]
        if not isinstance(generated, dict):
            return generated
        real = {}
        for key, value in generated.items():
            kind = BODY_IDS.get(key)
            if kind == "image" and not self.servers_left:
                kind = None
            real[key] = self.body_ids[kind] if kind and isinstance(value, (str, int)) else self.body(value)
        return real


def _namespace(project_id: str) -> dict[str, Any]:
    """A private metadefs namespace of alice's project (an admin's to make) holding an object, a property and a
    tag named as the `name` path parameter (the keypair's name)."""
    return {"namespace": f"{MARK}-ns", "visibility": "private", "owner": project_id,
            "objects": [{"name": f"{MARK}-key"}], "tags": [{"name": f"{MARK}-key"}],
            "properties": {f"{MARK}-key": {"title": "t", "type": "string"}}}


def _create(live: Live, user: str, path: str, body: dict) -> dict:
    resp = requests.post(f"{live.url}{path}", json=body, headers={"X-Auth-Token": live.token(user)}, timeout=30)
    assert resp.status_code in (200, 201, 202), resp.text
    return resp.json()


@pytest.fixture(scope="module")
def tokens(fuzzed: Live) -> dict[str, str]:
    return {user: fuzzed.token(user) for user in USERS}


@pytest.fixture(scope="module")
def known(fuzzed: Live, qcow2_file: Path) -> Known:
    """An image, a keypair, an ACTIVE server and its port, a network with a subnet, a router, a floating IP,
    a subnet pool, a security group with a rule, a volume with a snapshot, attached to the server."""
    conn = fuzzed.sdk("alice")
    image = conn.image.create_image(name=f"{MARK}-img", filename=str(qcow2_file), disk_format="qcow2",
                                    container_format="bare", visibility="shared", is_protected=True)
    # Protected: the fuzzing's DELETEs (an admin's) would delete it even while the server uses it, as Glance does.
    # Shared with a project id Glance does not check (bob's would let bob see the image).
    _create(fuzzed, "alice", f"/image/v2/images/{image.id}/members", {"member": f"{MARK}-member"})
    _create(fuzzed, "admin", "/image/v2/metadefs/namespaces", _namespace(conn.current_project_id))
    _create(fuzzed, "alice", "/compute/v2.1/os-keypairs", {"keypair": {"name": f"{MARK}-key"}})
    default = conn.network.find_network("default").id
    server = conn.compute.create_server(name=f"{MARK}-vm", image_id=image.id, flavor_id="1",
                                        networks=[{"uuid": default}])
    conn.compute.wait_for_server(server, wait=120)
    network = _create(fuzzed, "alice", "/network/v2.0/networks", {"network": {"name": f"{MARK}-net"}})["network"]
    subnet = _create(fuzzed, "alice", "/network/v2.0/subnets",
                     {"subnet": {"network_id": network["id"], "cidr": "10.9.0.0/24"}})["subnet"]
    group = _create(fuzzed, "alice", "/network/v2.0/security-groups",
                    {"security_group": {"name": f"{MARK}-sg"}})["security_group"]
    router = _create(fuzzed, "alice", "/network/v2.0/routers", {"router": {"name": f"{MARK}-router"}})["router"]
    # A floating IP of an admin's external network, and a subnet pool.
    external = _create(fuzzed, "admin", "/network/v2.0/networks",
                       {"network": {"name": f"{MARK}-public", "router:external": True}})["network"]
    _create(fuzzed, "admin", "/network/v2.0/subnets",
            {"subnet": {"network_id": external["id"], "cidr": "172.24.9.0/24", "ip_version": 4}})
    floating_ip = _create(fuzzed, "alice", "/network/v2.0/floatingips",
                          {"floatingip": {"floating_network_id": external["id"]}})["floatingip"]
    pool = _create(fuzzed, "alice", "/network/v2.0/subnetpools",
                   {"subnetpool": {"name": f"{MARK}-pool", "prefixes": ["10.210.0.0/16"]}})["subnetpool"]
    rule = _create(fuzzed, "alice", "/network/v2.0/security-group-rules",
                   {"security_group_rule": {"security_group_id": group["id"], "direction": "ingress"}})
    volume = conn.block_storage.create_volume(name=f"{MARK}-vol", size=1)
    conn.block_storage.wait_for_status(volume, "available", wait=120)
    snapshot = conn.block_storage.create_snapshot(volume_id=volume.id, name=f"{MARK}-snap")
    conn.block_storage.wait_for_status(snapshot, "available", wait=120)
    for kind, item in (("volumes", volume.id), ("snapshots", snapshot.id)):
        _create(fuzzed, "alice", f"/volume/v3/{kind}/{item}/metadata", {"metadata": {"k": "v"}})
    # A private volume type shared with alice's project (bob's cannot see it), with an extra spec k.
    vtype = _create(fuzzed, "admin", "/volume/v3/types", {"volume_type": {
        "name": f"{MARK}-type", "os-volume-type-access:is_public": False, "extra_specs": {"k": "v"}}})["volume_type"]
    shared = requests.post(f"{fuzzed.url}/volume/v3/types/{vtype['id']}/action", timeout=30,
                           json={"addProjectAccess": {"project": conn.current_project_id}},
                           headers={"X-Auth-Token": fuzzed.token("admin")})
    assert shared.status_code == 202, shared.text
    # Cinder's newer kinds: an admin's QoS spec and public group type (with a spec k), alice's group of the
    # shared type, its group snapshot, and a transfer of a second volume of hers.
    admin_headers = {"X-Auth-Token": fuzzed.token("admin"), "OpenStack-API-Version": f"volume {CINDER_LATEST}"}
    alice_headers = {"X-Auth-Token": fuzzed.token("alice"), "OpenStack-API-Version": f"volume {CINDER_LATEST}"}
    qos = requests.post(f"{fuzzed.url}/volume/v3/qos-specs", headers=admin_headers, timeout=30,
                        json={"qos_specs": {"name": f"{MARK}-qos", "k": "v"}}).json()["qos_specs"]
    group_type = requests.post(f"{fuzzed.url}/volume/v3/group_types", headers=admin_headers, timeout=30, json={
        "group_type": {"name": f"{MARK}-gtype", "group_specs": {"k": "v"}}}).json()["group_type"]
    volume_group = requests.post(f"{fuzzed.url}/volume/v3/groups", headers=alice_headers, timeout=30, json={
        "group": {"name": f"{MARK}-group", "group_type": group_type["id"], "volume_types": [vtype["id"]]}}).json()[
        "group"]
    group_snapshot = requests.post(f"{fuzzed.url}/volume/v3/group_snapshots", headers=alice_headers, timeout=30,
                                   json={"group_snapshot": {"group_id": volume_group["id"]}}).json()["group_snapshot"]
    offered = conn.block_storage.create_volume(name=f"{MARK}-offered", size=1)
    conn.block_storage.wait_for_status(offered, "available", wait=120)
    transfer = _create(fuzzed, "alice", "/volume/v3/os-volume-transfer", {"transfer": {"volume_id": offered.id}})[
        "transfer"]
    conn.compute.create_volume_attachment(server, volume_id=volume.id)
    credential = _create(fuzzed, "alice", f"/identity/v3/users/{conn.current_user_id}/application_credentials",
                         {"application_credential": {"name": f"{MARK}-cred", "access_rules": [
                             {"service": "compute", "method": "GET", "path": "/v2.1/servers"}]}})[
        "application_credential"]
    conn.block_storage.wait_for_status(volume, "in-use", wait=120)
    port = requests.get(f"{fuzzed.url}/network/v2.0/ports", params={"device_id": server.id}, timeout=30,
                        headers={"X-Auth-Token": fuzzed.token("alice")}).json()["ports"][0]
    server_group = _create(fuzzed, "alice", "/compute/v2.1/os-server-groups",
                           {"server_group": {"name": f"{MARK}-sg", "policies": ["affinity"]}})["server_group"]
    _create(fuzzed, "alice", f"/compute/v2.1/servers/{server.id}/metadata", {"metadata": {"k": "v"}})
    aggregate = _create(fuzzed, "admin", "/compute/v2.1/os-aggregates", {"aggregate": {"name": f"{MARK}-agg"}})
    compute = requests.get(f"{fuzzed.url}/compute/v2.1/os-services?binary=nova-compute", timeout=30,
                           headers={"X-Auth-Token": fuzzed.token("admin"),
                                    "OpenStack-API-Version": "compute 2.53"}).json()["services"][0]
    host = compute["host"]
    ids = {"server_id": server.id, "image_id": image.id, "name": f"{MARK}-key", "flavor_id": "1",
           "project_id": conn.current_project_id, "user_id": conn.current_user_id, "volume_id": volume.id,
           "snapshot_id": snapshot.id, "group_id": server_group["id"], "key": "k", "network": "default",
           "rule_id": rule["security_group_rule"]["id"], "security_group_id": group["id"],
           "type_id": vtype["id"], "domain_id": "default", "role_id": stable_id("role", "member"),
           "credential_id": credential["id"], "access_rule_id": credential["access_rules"][0]["id"],
           "member_id": f"{MARK}-member", "namespace": f"{MARK}-ns", "task_id": f"{MARK}-task",
           "qos_id": qos["id"], "call": "associations", "service_action": "enable", "group_type_id": group_type["id"],
           "volume_group_id": volume_group["id"], "group_snapshot_id": group_snapshot["id"],
           "transfer_id": transfer["id"], "service_id": compute["id"],
           "aggregate_id": str(aggregate["aggregate"]["id"]), "host": host, "floating_ip_id": floating_ip["id"],
           "network_id": network["id"], "alias": "os-hosts", "action": "startup", "tag": "t",
           "before": "2024-01-15 10:00:00",
           "class_name": f"{MARK}-class"}  # not `default`: the fuzzing would lower every project's quotas
    items = {"networks": network["id"], "subnets": subnet["id"], "security-groups": group["id"],
             "security-group-rules": rule["security_group_rule"]["id"], "ports": port["id"], "routers": router["id"],
             "floatingips": floating_ip["id"], "subnetpools": pool["id"], "extensions": "security-group",
             "agents": "no-agent-runs-here"}
    body_ids = {"network": network["id"], "default_network": default, "group": group["id"],
                "keypair": f"{MARK}-key", "flavor": "1", "image": image.id, "volume": volume.id}
    return Known(ids, items, body_ids)


@schema.parametrize()
@settings(deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_fuzz(case, fuzzed: Live, tokens: dict[str, str], known: Known) -> None:
    generated_path, generated_body = case.path_parameters, case.body
    # DELETE, Cinder's force-delete action, and Keystone's account writes (a PATCH of alice or her project, a role
    # grant, a password change), keep the generated ids: with real ones they would delete or rewrite the fixture's
    # own objects and accounts, or lock alice out with wrong original passwords.
    rewrites = case.method == "DELETE" or (case.method in ("PATCH", "PUT") and case.path.startswith("/identity/")) \
        or case.path == "/identity/v3/users/{user_id}/password" \
        or (isinstance(generated_body, dict) and "os-force_delete" in generated_body)
    real_path = known.path_parameters(case.path, generated_path or {}) if not rewrites else {}
    checks = CHECKS
    if _negative_body_only(case) and (case.path, case.method) in VALIDATED:
        checks = [*CHECKS, negative_data_rejection]
        real_body = generated_body  # real ids in it could make it valid: the refusal is what is checked
    else:
        real_body = known.body(generated_body)
    for user in USERS:
        headers = {"X-Auth-Token": tokens[user]}
        case.call_and_validate(base_url=fuzzed.url, headers=headers, checks=checks)
        if real_path == (generated_path or {}) and real_body == generated_body:
            continue
        case.path_parameters, case.body = real_path or generated_path, real_body
        try:
            response = case.call_and_validate(base_url=fuzzed.url, headers=headers, checks=checks)
        finally:
            case.path_parameters, case.body = generated_path, generated_body
        built = case.method == "POST" and case.path.endswith(("/servers", "/servers/detail"))
        if built and response.status_code == 202:
            known.servers_left = max(0, known.servers_left - 1)


def _negative_body_only(case: Any) -> bool:
    """Whether the case's body is the one part generated against its schema (negative query parameters or
    paths are not validated by the hook)."""
    meta = case.meta
    return meta is not None and meta.is_negative_at(ParameterLocation.BODY) and not any(
        meta.is_negative_at(where) for where in (ParameterLocation.PATH, ParameterLocation.QUERY,
                                                 ParameterLocation.HEADER, ParameterLocation.COOKIE))


# -- hand-made hostile input ---------------------------------------------------------------

def _operations(content: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every described operation whose request body is of type `content`."""
    paths = yaml.safe_load(SPEC.read_text())["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method, op in item.items()
            if method != "parameters" and content in op.get("requestBody", {}).get("content", {})]


def _error_message(path: str, resp: requests.Response | http.client.HTTPResponse, body: bytes) -> str:
    """The message of the service's error body, after checking its shape."""
    status = resp.status_code if isinstance(resp, requests.Response) else resp.status
    assert 400 <= status < 500, (status, body)
    error = json.loads(body)
    service = path.strip("/").split("/", 1)[0]
    if service == "network":
        assert set(error["NeutronError"]) == {"type", "message", "detail"}, error
        return error["NeutronError"]["message"]
    if service in ("compute", "volume"):
        (inner,) = error.values()
    else:
        inner = error["error"]
        assert inner["title"], error
    assert inner["code"] == status, error
    return inner["message"]


def _url(fuzzed: Live, known: Known, path: str) -> str:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return fuzzed.url + path.format(**known.path_parameters(path, dict.fromkeys(names, "")))


JSON_OPERATIONS = _operations("application/json")
# Not a JSON object, or not text; the last two were 500s (RecursionError, and a lone surrogate the store
# could not encode).
MALFORMED = [b'{"server": ', b"\xff\xfe{}", b"[1, 2]", b'"text"', b"\x00", b"[" * 100_000 + b"]" * 100_000,
             b'{"x": {"name": "a\\ud800"}}']


@pytest.mark.parametrize(("method", "path"), JSON_OPERATIONS)
def test_malformed_json(fuzzed: Live, tokens: dict[str, str], known: Known, method: str, path: str) -> None:
    headers = {"X-Auth-Token": tokens["admin"], "Content-Type": "application/json"}
    for body in MALFORMED:
        resp = requests.request(method, _url(fuzzed, known, path), data=body, headers=headers, timeout=30)
        assert resp.status_code == 400, (body, resp.text)
        assert names_field(_error_message(path, resp, resp.content), "body"), resp.text


@pytest.mark.parametrize(("method", "path"), JSON_OPERATIONS)
def test_oversized_json(fuzzed: Live, tokens: dict[str, str], known: Known, method: str, path: str) -> None:
    limit = 1 << 20  # max_json_body's default
    body = b'{"x": "' + b"a" * limit + b'"}'
    headers = {"X-Auth-Token": tokens["admin"], "Content-Type": "application/json"}
    url = _url(fuzzed, known, path)
    declared = requests.request(method, url, data=body, headers=headers, timeout=30)
    assert declared.status_code == 413, declared.text
    assert "exceeds the limit" in _error_message(path, declared, declared.content)
    chunked = requests.request(method, url, data=iter([body[:limit], body[limit:]]), headers=headers, timeout=30)
    assert chunked.status_code == 413, chunked.text
    assert "exceeds the limit" in _error_message(path, chunked, chunked.content)


# Path segments that try to leave their directory, raw on the wire (a client library would normalize them).
HOSTILE_IDS = ["..", "%2e%2e", "..%2F..%2F" + MARK, "%2e%2e%2f%2e%2e%2f" + MARK, "%00", MARK + "%00..",
               "..%5C" + MARK, "%252e%252e%252f" + MARK]


def _raw(fuzzed: Live, method: str, path: str, token: str) -> tuple[http.client.HTTPResponse, bytes]:
    """A request whose path goes on the wire exactly as given."""
    host, port = fuzzed.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers={"X-Auth-Token": token})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "path"), [(m.upper(), p) for p, item in yaml.safe_load(SPEC.read_text())
                                              ["paths"].items() for m in item if "{" in p and m in ("get", "delete")])
def test_hostile_ids(fuzzed: Live, tokens: dict[str, str], method: str, path: str) -> None:
    for hostile in HOSTILE_IDS:
        wire = "/".join(hostile if part.startswith("{") else part for part in path.split("/"))
        resp, body = _raw(fuzzed, method, wire, tokens["admin"])
        assert resp.status in (400, 404, 405), (wire, resp.status, body)
        _error_message(path, resp, body)


def test_hostile_names(fuzzed: Live, tokens: dict[str, str], known: Known) -> None:
    """Names that look like paths are refused where they become file names, and kept as text elsewhere."""
    headers = {"X-Auth-Token": tokens["admin"]}
    hostile = [f"../../{MARK}", f"..\\{MARK}", f"{MARK}\x00/../x", f"/tmp/{MARK}"]

    def post(path: str, body: dict) -> requests.Response:
        resp = requests.post(fuzzed.url + path, json=body, headers=headers, timeout=30)
        assert resp.status_code < 500, resp.text
        return resp

    for name in hostile:
        refused = post("/image/v2/images", {"name": name, "disk_format": "qcow2"})
        assert refused.status_code == 400 and "name" in _error_message("/image", refused, refused.content)
        refused = post("/compute/v2.1/os-keypairs", {"keypair": {"name": name}})
        assert refused.status_code == 400 and "keypair.name" in _error_message("/compute", refused, refused.content)
        for path, key in (("/network/v2.0/networks", "network"), ("/network/v2.0/security-groups", "security_group"),
                          ("/identity/v3/projects", "project")):
            kept = post(path, {key: {"name": name}})
            if key == "project" and "\x00" in name:  # Keystone's accounts live in config.yaml: no control characters
                assert kept.status_code == 400 and "project.name" in _error_message("/identity", kept, kept.content)
                continue
            assert kept.status_code == 201 and kept.json()[key]["name"] == name, kept.text
    server = post("/compute/v2.1/servers", {"server": {
        "name": hostile[0], "flavorRef": "1", "imageRef": known.ids["image_id"],
        "networks": [{"uuid": known.body_ids["default_network"]}]}})
    assert server.status_code == 202, server.text
    server_id = server.json()["server"]["id"]
    shown = requests.get(f"{fuzzed.url}/compute/v2.1/servers/{server_id}", headers=headers, timeout=30).json()
    assert shown["server"]["name"] == hostile[0], "a display name only: the domain is srv-<uuid>"
    requests.delete(f"{fuzzed.url}/compute/v2.1/servers/{server_id}", headers=headers, timeout=30)


def test_image_properties_that_are_not_free_form(fuzzed: Live, tokens: dict[str, str], qcow2_file: Path) -> None:
    """Regression: a property named like an import argument (owner, source, dry_run, ...) was a 500 on upload."""
    headers = {"X-Auth-Token": tokens["alice"]}
    for key in ("owner", "source", "dry_run", "image_id", "status", "checksum"):
        resp = requests.post(f"{fuzzed.url}/image/v2/images", json={"name": "props", key: "x"}, headers=headers,
                             timeout=30)
        assert resp.status_code == 400, resp.text
        assert _error_message("/image", resp, resp.content).startswith(f"{key}: is reserved"), resp.text
    resp = requests.post(f"{fuzzed.url}/image/v2/images", json={"name": "props", "visibility": "everyone"},
                         headers=headers, timeout=30)
    assert resp.status_code == 400 and _error_message("/image", resp, resp.content).startswith("visibility: ")
    created = requests.post(f"{fuzzed.url}/image/v2/images", json={"name": "props", "os_distro": "cirros"},
                            headers=headers, timeout=30).json()
    upload = requests.put(f"{fuzzed.url}/image/v2/images/{created['id']}/file", data=qcow2_file.read_bytes(),
                          headers={**headers, "Content-Type": "application/octet-stream"}, timeout=60)
    assert upload.status_code == 204, upload.text
    record = ImageStore(fuzzed.layout).get_by_id(created["id"])
    assert dict(record.properties) == {"os_distro": "cirros"} and record.path.is_file()


def _restore_metadefs(fuzzed: Live, known: Known) -> None:
    """The fuzzing before (as admin) may have changed, protected, emptied or deleted alice's namespace: make it
    again."""
    admin = {"X-Auth-Token": fuzzed.token("admin")}
    url = f"{fuzzed.url}/image/v2/metadefs/namespaces/{known.ids['namespace']}"
    requests.put(url, json={"namespace": known.ids["namespace"], "protected": False}, headers=admin, timeout=30)
    requests.delete(url, headers=admin, timeout=30)
    _create(fuzzed, "admin", "/image/v2/metadefs/namespaces", _namespace(known.ids["project_id"]))


def _restore_cinder(fuzzed: Live, known: Known) -> None:
    """The fuzzing before may have replaced the metadata and made the private type public: put them back."""
    admin, alice = {"X-Auth-Token": fuzzed.token("admin")}, {"X-Auth-Token": fuzzed.token("alice")}
    for kind, name in (("volumes", "volume_id"), ("snapshots", "snapshot_id")):
        requests.put(f"{fuzzed.url}/volume/v3/{kind}/{known.ids[name]}/metadata", headers=alice, timeout=30,
                     json={"metadata": {"k": "v"}}).raise_for_status()
    vtype = f"{fuzzed.url}/volume/v3/types/{known.ids['type_id']}"
    requests.put(vtype, headers=admin, json={"volume_type": {"is_public": False}}, timeout=30).raise_for_status()
    requests.post(f"{vtype}/extra_specs", headers=admin, json={"extra_specs": {"k": "v"}},
                  timeout=30).raise_for_status()


# Objects of alice's the fixture cannot make: a Cinder user message needs a volume operation that fails
# (tests/api/test_volume_messages.py checks another project's message is out of reach).
NOT_MADE = ("/volume/v3/messages/",)


@pytest.mark.parametrize(("method", "path"), [(m.upper(), p) for p, item in yaml.safe_load(SPEC.read_text())
                                              ["paths"].items() for m in item
                                              if "{" in p and m in ("get", "delete") and not p.startswith(NOT_MADE)])
def test_another_project_cannot_reach_them(fuzzed: Live, known: Known, method: str, path: str) -> None:
    """alice's objects, asked for by bob (another project): 404 (403 for Keystone's), and still there."""
    url = _url(fuzzed, known, path)
    if path.startswith("/volume/v3/"):
        _restore_cinder(fuzzed, known)
    if path.startswith("/image/v2/metadefs/"):
        _restore_metadefs(fuzzed, known)
    if path.startswith("/network/v2.0/") and path.endswith("/tags/{tag}"):
        # Asked as the object's tag list: the ownership checked is the object's, and alice's port (a server's
        # NIC) can carry no tag to ask for.
        url = url.rsplit("/", 1)[0]
    if path.startswith("/image/v2/images/{image_id}/members"):
        # The fuzzing before may have made the image private or removed its member: share it again.
        alice = {"X-Auth-Token": fuzzed.token("alice")}
        requests.patch(url.split("/members", 1)[0], headers={**alice, "Content-Type": PATCH_MEDIA}, timeout=30,
                       json=[{"op": "replace", "path": "/visibility", "value": "shared"}]).raise_for_status()
        requests.post(url.split("/members", 1)[0] + "/members", json={"member": known.ids["member_id"]},
                      headers=alice, timeout=30)  # 409 if it is still there
    if path.startswith("/compute/v2.1/servers/{server_id}/metadata"):
        # The fuzzing before may have replaced the server's metadata and lowered alice's quotas: put them back.
        requests.delete(f"{fuzzed.url}/compute/v2.1/os-quota-sets/{known.ids['project_id']}",
                        headers={"X-Auth-Token": fuzzed.token("admin")}, timeout=30).raise_for_status()
        requests.put(url.rsplit("/metadata", 1)[0] + "/metadata", headers={"X-Auth-Token": fuzzed.token("alice")},
                     json={"metadata": {"k": "v"}}, timeout=30).raise_for_status()
    if path.startswith("/compute/v2.1/images/{image_id}/metadata"):
        # alice's image as the fuzzing left it, with the metadata item the path names (Nova's image metadata).
        requests.put(url.rsplit("/metadata", 1)[0] + "/metadata", headers={"X-Auth-Token": fuzzed.token("alice")},
                     json={"metadata": {"k": "v"}}, timeout=30).raise_for_status()
    # Cinder at its newest microversion: groups, group types and the like are 404 before theirs.
    version = {"OpenStack-API-Version": f"volume {CINDER_LATEST}"} if path.startswith("/volume/v3/") else {}
    resp = requests.request(method, url, headers={"X-Auth-Token": fuzzed.token(OUTSIDER), **version}, timeout=30)
    if path.startswith("/network/v2.0/extensions/"):
        assert resp.status_code == (200 if method == "GET" else 405), "extensions are everyone's"
        return
    if path.startswith("/network/v2.0/agents/"):
        assert resp.status_code == 404, "no agent runs: none to show or delete, for anyone"
        return
    if path.startswith("/compute/v2.1/flavors/"):
        if path.endswith("/os-extra_specs/{key}"):
            # Extra specs are everyone's to read on a public flavor and an admin's to unset; the fuzzing may
            # have set the key the path names.
            assert resp.status_code in ((200, 404) if method == "GET" else (403,)), resp.text
            return
        if path.endswith("/os-flavor-access"):
            assert resp.status_code == 403, "a flavor's access list is an admin's"
            return
        assert resp.status_code == (200 if method == "GET" else 403), "flavors are everyone's, admins' to delete"
        return
    if path.startswith("/image/v2/schemas/"):  # Glance's schemas are everyone's: bob reads what alice reads
        assert resp.status_code == requests.get(url, headers={"X-Auth-Token": fuzzed.token("alice")},
                                                timeout=30).status_code, resp.text
        return
    if path.startswith("/compute/v2.1/servers/{server_id}/tags"):
        # Tags start at 2.26; without a version header the API is a 404 for alice too.
        assert resp.status_code == 404, resp.text
        return
    if path.startswith("/compute/v2.1/extensions/"):
        assert resp.status_code == 200, "extensions are everyone's"
        return
    if path.startswith(("/compute/v2.1/os-hypervisors/", "/compute/v2.1/os-hosts/", "/compute/v2.1/os-aggregates/",
                        "/compute/v2.1/os-simple-tenant-usage/", "/compute/v2.1/os-instance_usage_audit_log/",
                        "/compute/v2.1/os-assisted-volume-snapshots/", "/compute/v2.1/os-quota-class-sets/",
                        "/volume/v3/os-quota-class-sets/", "/image/v2/tasks/")) \
            or path.endswith("/diagnostics"):
        # An admin's to see (another project's usage too), as Nova's and Glance's policies have it.
        assert resp.status_code == 403, resp.text
        return
    if path == "/identity/v3/domains/{domain_id}":  # the default domain is every project's
        assert resp.status_code == 200, resp.text
        return
    if path.startswith(("/identity/v3/roles/", "/identity/v3/projects/{project_id}/users/{user_id}/roles/")):
        assert resp.status_code == 403, resp.text  # roles and grants are an admin's, as Keystone's policy
        return
    expected = 403 if path.startswith("/identity/") else 404
    if path.startswith("/volume/v3/types/") and (method == "DELETE" or path.endswith("/os-volume-type-access")
                                                 or "/encryption" in path):
        # Admin-only on volume types (a type's encryption too): Cinder's policy refuses before any lookup.
        assert resp.status_code == 403, resp.text
        return
    if path.startswith(("/volume/v3/qos-specs/", "/volume/v3/os-hosts/", "/volume/v3/capabilities/")):
        assert resp.status_code == 403, resp.text  # admin-only in Cinder's policy, before any lookup
        return
    if path.startswith("/volume/v3/group_types/"):  # public group types are everyone's, admins' to delete
        assert resp.status_code == (200 if method == "GET" else 403), resp.text
        return
    if "/os-quota-sets/" in path or path.startswith("/network/v2.0/quotas/"):
        # Quotas are not objects: another project's are refused by policy, as Nova, Cinder and Neutron do;
        # Nova's and Cinder's defaults are everyone's.
        if path.endswith("/defaults"):
            assert resp.status_code == 200, resp.text
            return
        expected = 403
    assert resp.status_code == expected, resp.text
    _error_message(path, resp, resp.content)
    if "get" not in yaml.safe_load(SPEC.read_text())["paths"][path]:  # Nova's rules: no GET of one
        return
    still = requests.get(url, headers={"X-Auth-Token": fuzzed.token("alice"), **version}, timeout=30)
    assert still.status_code == 200, still.text


def test_keys_and_user_data_that_are_not_text(fuzzed: Live, tokens: dict[str, str], known: Known) -> None:
    """Regression: non-ASCII base64 (key, user data) and deeply nested YAML were 500s (and a user entry's
    error named the field twice)."""
    headers = {"X-Auth-Token": tokens["alice"]}
    resp = requests.post(f"{fuzzed.url}/compute/v2.1/os-keypairs", headers=headers, timeout=30,
                         json={"keypair": {"name": "k", "public_key": "ssh-ed25519 \u00e9\u00e9"}})
    assert resp.status_code == 400
    assert _error_message("/compute", resp, resp.content) == "keypair.public_key: the key is not valid base64"
    nested = base64.b64encode(b"#cloud-config\npackages: " + b"[" * 20_000 + b"]" * 20_000).decode()
    not_a_user = base64.b64encode(b"#cloud-config\nusers: [1]").decode()
    shell_list = base64.b64encode(b"#cloud-config\nusers: [{name: ops, shell: [bash]}]").decode()
    for user_data, message in (("\u00e9\u00e9", "is not base64-encoded UTF-8 text"),
                               (nested, "line 2, column 42: malformed YAML: nested too deeply (more than 32 levels)"),
                               (not_a_user, "users[0]: must be a mapping with at least 'name', "
                                            "or the string 'default'"),
                               (shell_list, "users[0] (ops): 'shell' must be a string, not a list")):
        resp = requests.post(f"{fuzzed.url}/compute/v2.1/servers", headers=headers, timeout=30, json={"server": {
            "name": "ud", "flavorRef": "1", "imageRef": known.ids["image_id"], "user_data": user_data}})
        assert resp.status_code == 400
        assert _error_message("/compute", resp, resp.content) == f"server.user_data: {message}"


@pytest.mark.parametrize(("path", "listing"), [("/compute/v2.1/servers", "servers"),
                                               ("/volume/v3/volumes", "volumes"),
                                               ("/volume/v3/snapshots", "snapshots")])
def test_post_to_a_detail_listing_creates_nothing(fuzzed: Live, tokens: dict[str, str], known: Known,
                                                  path: str, listing: str) -> None:
    """Regression: POST …/detail ran the collection's create (neither Nova nor Cinder has that route)."""
    headers = {"X-Auth-Token": tokens["alice"]}
    body = {"server": {"name": "detail", "flavorRef": "1", "imageRef": known.ids["image_id"]},
            "volume": {"size": 1, "name": "detail"}, "snapshot": {"volume_id": known.ids["volume_id"]}}
    before = requests.get(f"{fuzzed.url}{path}", headers=headers, timeout=30).json()[listing]
    resp = requests.post(f"{fuzzed.url}{path}/detail", headers=headers, timeout=30,
                         json={listing[:-1]: body[listing[:-1]]})
    assert resp.status_code == 405 and "POST" not in resp.headers["Allow"]
    assert _error_message(path, resp, resp.content)
    assert requests.get(f"{fuzzed.url}{path}", headers=headers, timeout=30).json()[listing] == before


def test_nothing_written_outside_the_root(fuzzed: Live, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Last in the module: after everything above, no file carries the mark outside the root."""
    root = fuzzed.layout.root
    assert [p.name for p in root.parent.iterdir()] == ["root"]
    escaped = [p for p in tmp_path_factory.getbasetemp().rglob(f"*{MARK}*") if root not in p.parents]
    for top in (Path("/"), Path("/tmp"), Path.cwd(), Path.home()):
        escaped += [p for p in top.iterdir() if MARK in p.name]
    assert escaped == []
    assert any(MARK in p.name for p in root.rglob(f"*{MARK}*")), "the mark is there to be found inside the root"
