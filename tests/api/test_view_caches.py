"""Views each worker process caches until a shared change counter moves (api/change_counter.py): a change made
through one worker shows in the next GET of another. Two apps over one root stand for two worker processes:
each has its own caches, both map the same counters file."""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import requests
from apitest import qcow2_file, serve_layout, serve_root  # noqa: F401 (fixtures)
from falcon import testing

from api.accounts import set_user
from api.app import create_api
from api.config import config_path
from api.db import Database
from provisioner.images import ImageStore
from provisioner.layout import Layout

FLAVORS = "/compute/v2.1/flavors"


def _flavor_names(url: str, token: str, path: str) -> set[str]:
    resp = requests.get(url + path, headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 200, resp.text
    return {f["name"] for f in resp.json()["flavors"]}


def test_a_flavor_created_or_deleted_through_one_worker_is_listed_so_by_the_other_at_once(tmp_path: Path) -> None:
    with serve_root(tmp_path / "root") as live, serve_layout(live.layout) as other:
        admin, alice = live.token("admin"), live.token("alice")
        paths = (FLAVORS, FLAVORS + "/detail")
        for url in (live.url, other):  # both lists cached
            for path in paths:
                assert "cached.big" not in _flavor_names(url, alice, path)

        created = requests.post(live.url + FLAVORS, headers={"X-Auth-Token": admin}, timeout=30, json={
            "flavor": {"name": "cached.big", "ram": 4096, "vcpus": 2, "disk": 20}})
        assert created.status_code == 200, created.text
        flavor_id = created.json()["flavor"]["id"]
        for url in (live.url, other):
            for path in paths:
                assert "cached.big" in _flavor_names(url, alice, path), (url, path)

        deleted = requests.delete(f"{other}{FLAVORS}/{flavor_id}", headers={"X-Auth-Token": admin}, timeout=30)
        assert deleted.status_code == 202, deleted.text
        for url in (live.url, other):
            for path in paths:
                assert "cached.big" not in _flavor_names(url, alice, path), (url, path)



# -- servers/detail: the rows each worker keeps until a server is written ----------------------------------

class _Engine:
    """A stand-in for Terraform, which cannot run here: a build or destroy finishes when its gate opens."""

    def __init__(self) -> None:
        self.built, self.destroyed = threading.Event(), threading.Event()

    def provision(self, spec: object) -> None:
        assert self.built.wait(30), "the test never let the build finish"

    def destroy(self, name: str, libvirt_uri: str | None = None) -> None:
        assert self.destroyed.wait(30), "the test never let the destroy finish"


def _client(layout: Layout, user: str, password: str,
            engine: _Engine | None = None) -> tuple[Any, testing.TestClient, dict[str, str]]:
    api = create_api(layout, engine or _Engine())  # type: ignore[arg-type]
    client = testing.TestClient(api.app)
    resp = client.simulate_post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"},
                                                       "password": password}}}}})
    assert resp.status_code == 201, resp.text
    return api, client, {"X-Auth-Token": resp.headers["X-Subject-Token"]}


def _writer(layout: Layout, image_id: str, steps: Connection) -> None:
    """The other worker process: creates alice's server, lets its job runner build it, renames it, deletes it
    and lets the runner destroy it, one step per message from the test, answering with the server's id once
    the step is stored."""
    engine = _Engine()
    api, client, alice = _client(layout, "alice", "alice-password", engine)
    api.tasks.start()
    server_id = ""

    def server() -> dict[str, Any]:
        return client.simulate_get(f"/compute/v2.1/servers/{server_id}", headers=alice).json.get("server", {})

    for step in iter(steps.recv, "done"):
        if step == "create":
            server_id = client.simulate_post("/compute/v2.1/servers", headers=alice, json={"server": {
                "name": "vm", "flavorRef": "1", "imageRef": image_id}}).json["server"]["id"]
        elif step == "build":
            engine.built.set()
            _until(lambda: server()["status"] == "ACTIVE")
        elif step == "rename":
            client.simulate_put(f"/compute/v2.1/servers/{server_id}", headers=alice,
                                json={"server": {"name": "renamed"}})
        elif step == "delete":
            client.simulate_delete(f"/compute/v2.1/servers/{server_id}", headers=alice)
        elif step == "destroy":
            engine.destroyed.set()
            _until(lambda: not server())
        steps.send(server_id)
    api.tasks.shutdown()


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(600):  # 30 s
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the other worker's server never reached the state")


def _details(client: testing.TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    resp = client.simulate_get("/compute/v2.1/servers/detail", headers=headers, query_string=query)
    assert resp.status_code == 200, resp.text
    return resp.json["servers"]


def test_a_server_written_by_another_worker_process_shows_in_the_next_servers_detail(
        tmp_path: Path, qcow2_file: Path) -> None:
    layout = Layout(tmp_path / "root")
    set_user(config_path(layout), "admin", "admin-password", "admin", ["admin"])
    set_user(config_path(layout), "alice", "alice-password", "demo", ["member"])
    set_user(config_path(layout), "bob", "bob-password", "other", ["member"])
    image_id = ImageStore(layout).import_source(str(qcow2_file), "cirros").id
    # The database in WAL mode before two processes open it: switching modes at once is "database is locked".
    Database(layout.state_db).connect().close()
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    other = multiprocessing.get_context("fork").Process(target=_writer, args=(layout, image_id, theirs),
                                                        daemon=True)
    other.start()
    theirs.close()  # the other process's end: a recv() here ends (EOFError) if that process dies

    def step(name: str) -> str:
        ours.send(name)
        if not ours.poll(60):
            raise AssertionError(f"the other worker process did not finish step {name!r}")
        return ours.recv()

    try:
        api, client, alice = _client(layout, "alice", "alice-password")
        api.tasks.shutdown()  # every write below is the other process's, its job runner's included
        bob, admin = _client(layout, "bob", "bob-password")[2], _client(layout, "admin", "admin-password")[2]
        assert _details(client, alice) == [] and _details(client, bob) == []  # both lists cached

        server_id = step("create")
        assert [(s["id"], s["status"]) for s in _details(client, alice)] == [(server_id, "BUILD")]
        assert _details(client, bob) == [], "a cached list shows no other project's servers"
        assert _details(client, admin) == [], "nor an admin's, but with all_tenants"
        assert [s["id"] for s in _details(client, admin, "all_tenants=1")] == [server_id]
        assert _details(client, bob) == []

        for name, expected in (("build", ("vm", "ACTIVE", None)), ("rename", ("renamed", "ACTIVE", None)),
                               ("delete", ("renamed", "ACTIVE", "deleting"))):
            step(name)
            assert [(s["name"], s["status"], s["OS-EXT-STS:task_state"]) for s in _details(client, alice)] == [
                expected], name

        step("destroy")
        assert _details(client, alice) == [] and _details(client, admin, "all_tenants=1") == []
        ours.send("done")
        other.join(30)
        assert other.exitcode == 0
    finally:
        if other.is_alive():
            other.kill()
            other.join()


def test_servers_detail_shows_each_reader_its_own_view_of_a_cached_server(tmp_path: Path, qcow2_file: Path) -> None:
    # The view text is cached per server (api/compute/view_cache.py): the microversion, an admin's view and the
    # base URL are part of what it was made from, so each request still gets the view it asked for.
    layout = Layout(tmp_path / "root")
    set_user(config_path(layout), "admin", "admin-password", "admin", ["admin"])
    set_user(config_path(layout), "alice", "alice-password", "demo", ["member"])
    image_id = ImageStore(layout).import_source(str(qcow2_file), "cirros").id
    engine = _Engine()
    api, client, alice = _client(layout, "alice", "alice-password", engine)
    admin = _client(layout, "admin", "admin-password")[2]
    api.tasks.start()
    try:
        created = client.simulate_post("/compute/v2.1/servers", headers=alice, json={"server": {
            "name": "vm", "flavorRef": "1", "imageRef": image_id}})
        assert created.status_code == 202, created.text
        engine.built.set()
        _until(lambda: _details(client, alice)[0]["status"] == "ACTIVE")
        for _ in range(2):  # the second round from the cache
            old, new = (_details(client, {**alice, "OpenStack-API-Version": f"compute {v}"}) for v in ("2.1", "2.47"))
            assert set(old[0]["flavor"]) == {"id", "links"} and old[0]["flavor"]["id"] == "1"
            assert "original_name" in new[0]["flavor"] and "id" not in new[0]["flavor"]
            assert "OS-EXT-SRV-ATTR:host" not in old[0]
            assert "OS-EXT-SRV-ATTR:host" in _details(client, admin, "all_tenants=1")[0]
            other_host = client.simulate_get("/compute/v2.1/servers/detail", headers=alice,
                                             host="elsewhere.example").json["servers"]
            assert other_host[0]["links"][0]["href"].startswith("http://elsewhere.example/")
            single = client.simulate_get(f"/compute/v2.1/servers/{old[0]['id']}", headers=alice).json["server"]
            assert {k: v for k, v in old[0].items() if k != "updated"} == {
                k: v for k, v in single.items() if k != "updated"}
    finally:
        api.tasks.shutdown()
