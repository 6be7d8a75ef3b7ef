"""Server builds and deletes with a stand-in engine (no Terraform): failure faults, ordering, restart recovery.

Every test runs twice: on the root's SQLite, and on a PostgreSQL database (`database:` in config.yaml).
"""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from apitest import qcow2_file  # noqa: F401 (fixtures)
from falcon import testing

from api.accounts import set_user
from api.app import create_api
from api.compute.models import ERROR, ComputeStore
from api.config import config_path, load_config
from api.db import Database
from api.jobs.queue import Claimer, JobQueue
from provisioner.errors import ProvisionError
from provisioner.images import ImageStore
from provisioner.layout import Layout
from provisioner.spec.codec import spec_from_json
from provisioner.spec.model import Address, DomainSpec, ExtraDisk, ImageRef, Nic


class StubEngine:
    """Records calls; `fail` makes provision raise, `gate` holds provision until set; `entered` is set once
    provision has been called (a claimed task is not yet a running engine call)."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[tuple[str, str]] = []

    def provision(self, spec) -> None:
        self.entered.set()
        self.gate.wait(30)
        self.calls.append(("provision", spec.name))
        if self.fail:
            raise ProvisionError(f"{spec.name}: terraform apply failed: boom")

    def destroy(self, name: str, libvirt_uri: str | None = None) -> None:
        self.calls.append(("destroy", name, libvirt_uri))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """Where the API keeps its records: None (SQLite under the root), or a new PostgreSQL database's URI."""
    return request.getfixturevalue("postgres_uri") if request.param == "postgresql" else None


def database(layout: Layout) -> Database:
    """The API database of the root, as its config.yaml names it (what create_api opens)."""
    return Database(layout.state_db, load_config(config_path(layout)).database)


@pytest.fixture
def setup(tmp_path: Path, qcow2_file: Path, backend: str | None):
    layout = Layout(tmp_path / "root")
    set_user(config_path(layout), "alice", "alice-password", "demo", ["member"])
    if backend is not None:
        config = config_path(layout)
        config.write_text(config.read_text() + f"database: {backend}\n")
    image = ImageStore(layout).import_source(str(qcow2_file), "cirros")

    def make(engine: StubEngine):
        api = create_api(layout, engine)
        assert api.context.db.uri == backend  # the backend this run of the test is about
        client = testing.TestClient(api.app)
        resp = client.simulate_post("/identity/v3/auth/tokens", json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"},
                                                           "password": "alice-password"}}}}})
        return api, client, {"X-Auth-Token": resp.headers["X-Subject-Token"]}
    return make, image.id, layout


def _wait(client, headers, server_id: str, done) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = client.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers)
        if done(resp):
            return resp
        time.sleep(0.05)
    raise AssertionError(f"server {server_id}: condition never met")


def test_failed_build_is_error_with_fault(setup) -> None:
    make, image_id, _ = setup
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
    make, image_id, layout = setup
    engine = StubEngine()
    engine.gate.clear()
    api, client, headers = make(engine)
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    assert client.simulate_delete(f"/compute/v2.1/servers/{server_id}", headers=headers).status_code == 204
    engine.gate.set()
    _wait(client, headers, server_id, lambda r: r.status_code == 404)
    # The delete names the server's own hypervisor (another API node sharing the database may have built it).
    assert engine.calls == [("provision", f"srv-{server_id}"), ("destroy", f"srv-{server_id}", layout.simulator_uri)]
    api.tasks.shutdown()


def _log_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


class FileEngine:
    """Usable across processes: logs `<pid> <event> <domain>` lines to a file; provision waits for `gates/<domain>`."""

    def __init__(self, log: Path, gates: Path):
        self.log = log
        self.gates = gates

    def _write(self, event: str, name: str) -> None:
        with self.log.open("a") as out:
            out.write(f"{os.getpid()} {event} {name}\n")

    def provision(self, spec) -> None:
        self._write("provision-start", spec.name)
        while not (self.gates / spec.name).exists():
            time.sleep(0.02)
        self._write("provision-end", spec.name)

    def destroy(self, name: str, libvirt_uri: str | None = None) -> None:
        self._write("destroy", name)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def _fork(target) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=target, daemon=True)
    process.start()
    return process


def test_killed_worker_build_resumes_after_restart(setup, tmp_path: Path) -> None:
    make, image_id, _ = setup
    log, gates = tmp_path / "log", tmp_path / "gates"
    gates.mkdir()

    def doomed_worker() -> None:
        # This process claims the build, then is killed in the middle of it (its gate never opens).
        _, client, headers = make(FileEngine(log, gates))
        client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
            "name": "vm", "flavorRef": "1", "imageRef": image_id}})
        time.sleep(300)

    worker = _fork(doomed_worker)
    _wait_for(lambda: _log_lines(log), "the build started in the worker")
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    domain = _log_lines(log)[0][2]

    engine = StubEngine()
    restarted, client, headers = make(engine)
    restarted.tasks.recover()
    restarted.tasks.start()
    server = _wait(client, headers, domain.removeprefix("srv-"),
                   lambda r: r.json["server"]["status"] != "BUILD").json["server"]
    assert server["status"] == "ACTIVE" and server.get("fault") is None
    assert engine.calls == [("provision", domain)]
    assert _log_lines(log) == [[str(worker.pid), "provision-start", domain]]
    restarted.tasks.shutdown()


def test_build_failing_while_the_server_stops_is_queued_again_not_error(setup) -> None:
    make, image_id, _ = setup
    engine = StubEngine(fail=True)  # what Ctrl-C does to Terraform mid-apply
    engine.gate.clear()
    api, client, headers = make(engine)
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    # Wait for the engine call itself: a task claimed just as stop() runs is released unrun, by design.
    assert engine.entered.wait(30), "the build never reached the engine"
    api.tasks.stop()
    engine.gate.set()
    api.tasks.shutdown()
    assert engine.calls == [("provision", f"srv-{server_id}")]
    assert api.context.db.connect().execute("SELECT kind, state, attempts FROM api_jobs").fetchall() == [
        ("build", "queued", 0)]
    assert client.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers).json["server"]["status"] == "BUILD"

    restarted, client2, headers2 = make(StubEngine())
    restarted.tasks.recover()
    restarted.tasks.start()
    server = _wait(client2, headers2, server_id, lambda r: r.json["server"]["status"] != "BUILD").json["server"]
    assert server["status"] == "ACTIVE"
    restarted.tasks.shutdown()


def test_server_left_busy_without_a_task_is_error_after_restart(setup) -> None:
    make, image_id, _ = setup
    api, client, headers = make(StubEngine())
    server_id = client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
    api.tasks.shutdown()
    # A record written before tasks were persistent: BUILD, with no task in the queue.
    api.context.db.connect().execute("DELETE FROM api_jobs")
    ComputeStore(api.context.db).change(server_id, status="BUILD", task_state="spawning")
    restarted, client2, headers2 = make(StubEngine())
    restarted.tasks.recover()
    server = client2.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=headers2).json["server"]
    assert server["status"] == ERROR and "restart" in server["fault"]["message"]


def test_two_processes_keep_each_servers_tasks_in_order(setup, tmp_path: Path) -> None:
    make, image_id, layout = setup
    log, gates = tmp_path / "log", tmp_path / "gates"
    gates.mkdir()
    config = config_path(layout)
    config.write_text(config.read_text() + "build_workers: 3\n")

    def other_process() -> None:
        other, _, _ = make(FileEngine(log, gates))
        other.tasks.start()
        time.sleep(300)

    child = _fork(other_process)
    api, client, headers = make(FileEngine(log, gates))
    ids = [client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": name, "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"] for name in ("x", "y")]
    _wait_for(lambda: len(_log_lines(log)) == 2, "both builds started")
    for server_id in ids:
        assert client.simulate_delete(f"/compute/v2.1/servers/{server_id}", headers=headers).status_code == 204
    # Neither delete may start while its server's build runs, whichever process asks (a third task may run).
    assert JobQueue(api.context.db, max_running=3).claim(Claimer.current("another-node")) is None
    first, second = (f"srv-{i}" for i in ids)
    (gates / first).touch()
    _wait(client, headers, ids[0], lambda r: r.status_code == 404)
    (gates / second).touch()
    _wait(client, headers, ids[1], lambda r: r.status_code == 404)
    for domain in (first, second):
        events = [line[1] for line in _log_lines(log) if line[2] == domain]
        assert events == ["provision-start", "provision-end", "destroy"], events
    child.kill()
    child.join()
    api.tasks.shutdown()


def test_build_workers_bounds_the_tasks_running_on_the_host(setup) -> None:
    make, image_id, layout = setup
    config = config_path(layout)
    config.write_text(config.read_text() + "build_workers: 1\n")
    engine = StubEngine()
    engine.gate.clear()
    api, client, headers = make(engine)
    ids = [client.simulate_post("/compute/v2.1/servers", headers=headers, json={"server": {
        "name": name, "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"] for name in ("x", "y")]
    db = api.context.db.connect()
    _wait_for(lambda: db.execute("SELECT state FROM api_jobs ORDER BY id").fetchall()
              == [("running",), ("queued",)], "the first build started")
    # Another process may not start the second build either: one task at a time on this host.
    assert JobQueue(api.context.db, max_running=1).claim(Claimer.current("another-node")) is None
    engine.gate.set()
    for server_id in ids:
        _wait(client, headers, server_id, lambda r: r.json["server"]["status"] == "ACTIVE")
    api.tasks.shutdown()


def test_spec_round_trips_through_json() -> None:
    spec = DomainSpec(
        name="srv-x", image=ImageRef("/img/a.qcow2", "qcow2", "ab" * 32, "cirros"), size=1 << 30, memory=512,
        cpus=1, cpu_mode="maximum", domain_type="qemu", libvirt_uri="test:///x",
        nics=(Nic(mac="52:54:00:00:00:01", bridge="br0",
                  addresses=(Address(ipaddress.IPv4Address("10.0.0.5"), 24),),
                  gateway=ipaddress.IPv4Address("10.0.0.1"), resolvers=(ipaddress.IPv4Address("1.1.1.1"),),
                  nwfilter="provisioner-port-1"),),
        users=({"name": "admin", "ssh_authorized_keys": ["ssh-ed25519 AAAA"]}, "root"), packages=("make",),
        extra_disks=(ExtraDisk(1 << 20),), image_digests=(("a", "b"),), data_archive=Path("/d/data.tar.gz"))
    assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert spec.to_json()["nics"][0]["nwfilter"] == "provisioner-port-1"
