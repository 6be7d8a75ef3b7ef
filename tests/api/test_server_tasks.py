"""Server builds and deletes with a stand-in engine (no Terraform): failure faults, ordering, restart recovery."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from pathlib import Path

import pytest
from apitest import qcow2_file  # noqa: F401 (fixtures)
from falcon import testing

from api.accounts import set_user
from api.app import create_api
from api.compute.models import ERROR
from api.compute.spec_codec import spec_from_json
from api.config import config_path
from provisioner.errors import ProvisionError
from provisioner.images import ImageStore
from provisioner.layout import Layout
from provisioner.spec.model import Address, DomainSpec, ExtraDisk, ImageRef, Nic


class StubEngine:
    """Records calls; `fail` makes provision raise, `gate` holds provision until set."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[tuple[str, str]] = []

    def provision(self, spec) -> None:
        self.gate.wait(30)
        self.calls.append(("provision", spec.name))
        if self.fail:
            raise ProvisionError(f"{spec.name}: terraform apply failed: boom")

    def destroy(self, name: str) -> None:
        self.calls.append(("destroy", name))


@pytest.fixture
def setup(tmp_path: Path, qcow2_file: Path):
    layout = Layout(tmp_path / "root")
    set_user(config_path(layout), "alice", "alice-password", "demo", ["member"])
    image = ImageStore(layout).import_source(str(qcow2_file), "cirros")

    def make(engine: StubEngine):
        api = create_api(layout, engine)
        client = testing.TestClient(api.app)
        resp = client.simulate_post("/identity/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"},
                                                           "password": "alice-password"}}}}})
        return api, client, {"X-Auth-Token": resp.headers["X-Subject-Token"]}
    return make, image.id


def _wait(client, headers, server_id: str, done) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = client.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers)
        if done(resp):
            return resp
        time.sleep(0.05)
    raise AssertionError(f"server {server_id}: condition never met")


def test_failed_build_is_error_with_fault(setup) -> None:
    make, image_id = setup
    api, client, headers = make(StubEngine(fail=True))
    created = client.simulate_post("/compute/v2.1/servers", headers=headers,
                                   json={"server": {"name": "vm", "flavorRef": "1", "imageRef": image_id}})
    assert created.status_code == 202
    server_id = created.json["server"]["id"]
    resp = _wait(client, headers, server_id, lambda r: r.json["server"]["status"] != "BUILD")
    assert resp.json["server"]["status"] == "ERROR"
    assert "boom" in resp.json["server"]["fault"]["message"]
    api.tasks.shutdown()


def test_delete_during_build_waits_then_destroys(setup) -> None:
    make, image_id = setup
    engine = StubEngine()
    engine.gate.clear()
    api, client, headers = make(engine)
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    assert client.simulate_delete(f"/compute/v2.1/servers/{server_id}", headers=headers).status_code == 204
    engine.gate.set()
    _wait(client, headers, server_id, lambda r: r.status_code == 404)
    assert engine.calls == [("provision", f"srv-{server_id}"), ("destroy", f"srv-{server_id}")]
    api.tasks.shutdown()


def test_restart_marks_interrupted_builds(setup) -> None:
    make, image_id = setup
    engine = StubEngine()
    engine.gate.clear()
    api, client, headers = make(engine)
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    restarted, client2, headers2 = make(StubEngine())
    restarted.tasks.recover()
    server = client2.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers2).json["server"]
    assert server["status"] == ERROR and "restart" in server["fault"]["message"]
    engine.gate.set()
    api.tasks.shutdown()
    restarted.tasks.shutdown()


def test_spec_round_trips_through_json() -> None:
    spec = DomainSpec(
        name="srv-x", image=ImageRef("/img/a.qcow2", "qcow2", "ab" * 32, "cirros"), size=1 << 30, memory=512,
        cpus=1, cpu_mode="maximum", domain_type="qemu", libvirt_uri="test:///x",
        nics=(Nic(mac="52:54:00:00:00:01", bridge="br0",
                  addresses=(Address(ipaddress.IPv4Address("10.0.0.5"), 24),),
                  gateway=ipaddress.IPv4Address("10.0.0.1"), resolvers=(ipaddress.IPv4Address("1.1.1.1"),)),),
        users=({"name": "admin", "ssh_authorized_keys": ["ssh-ed25519 AAAA"]}, "root"), packages=("make",),
        extra_disks=(ExtraDisk(1 << 20),), image_digests=(("a", "b"),), data_archive=Path("/d/data.tar.gz"))
    assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
