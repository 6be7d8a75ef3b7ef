"""Two roots sharing one PostgreSQL database (`database:` in config.yaml): what one API writes, the other serves.

Each root is served by its own `bin/provision serve` process (the simulator
hypervisor), with the same accounts in its own config.yaml: project and user
ids derive from their names, so both see the same projects. Tokens are
signed by each root's own key: a client logs in to each.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import pg
import requests
from apitest import ACCOUNTS, PASSWORD, qcow2_file  # noqa: F401 (fixtures)
from test_serve import REPO, serving

from api.accounts import set_user
from api.config import config_path, load_config
from api.db import CONNECT_TIMEOUT
from provisioner.images import ImageStore
from provisioner.layout import Layout
from provisioner.provider.simulator import open_readonly


def _root(path: Path, database: str) -> Path:
    layout = Layout(path)
    for user, (project, roles) in ACCOUNTS.items():
        set_user(config_path(layout), user, PASSWORD, project, roles)
    with config_path(layout).open("a") as out:
        out.write(f"database: {database}\n")
    return path


class Client:
    """alice of project demo on one served root."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "alice", "domain": {"name": "Default"}, "password": PASSWORD}}},
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}
        resp = requests.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        self.headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=30)

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.url + path, headers=self.headers, json=body, timeout=60)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers, timeout=60)


def test_records_written_through_one_root_are_served_by_the_other(tmp_path: Path, postgres_uri: str,
                                                                  qcow2_file: Path) -> None:
    one, other = _root(tmp_path / "one", postgres_uri), _root(tmp_path / "other", postgres_uri)
    image = ImageStore(Layout(one)).import_source(str(qcow2_file), "cirros")
    with serving(one) as first, serving(other) as second:
        a, b = Client(first.port), Client(second.port)
        # Listed through the other first: whatever it caches must not hide what the first root writes next.
        assert b.get("/compute/v2.1/servers").json()["servers"] == []
        assert b.get("/compute/v2.1/os-keypairs").json()["keypairs"] == []

        network = a.post("/network/v2.0/networks", {"network": {"name": "shared-net"}})
        assert network.status_code == 201, network.text
        keypair = a.post("/compute/v2.1/os-keypairs", {"keypair": {"name": "shared-key"}})
        assert keypair.status_code == 200, keypair.text
        server = a.post("/compute/v2.1/servers", {"server": {
            "name": "shared-vm", "flavorRef": "1", "imageRef": image.id,
            "networks": [{"uuid": network.json()["network"]["id"]}]}})
        assert server.status_code == 202, server.text
        server_id = server.json()["server"]["id"]

        seen = b.get(f"/network/v2.0/networks/{network.json()['network']['id']}")
        assert seen.status_code == 200 and seen.json()["network"]["name"] == "shared-net", seen.text
        keypairs = b.get("/compute/v2.1/os-keypairs").json()["keypairs"]
        assert [k["keypair"]["fingerprint"] for k in keypairs] == [keypair.json()["keypair"]["fingerprint"]]
        assert [s["id"] for s in b.get("/compute/v2.1/servers").json()["servers"]] == [server_id]
        shown = b.get(f"/compute/v2.1/servers/{server_id}")
        assert shown.status_code == 200 and shown.json()["server"]["name"] == "shared-vm", shown.text
        # A NUL, which PostgreSQL's text cannot hold, in a name kept as text and in an id from the path.
        odd = a.post("/network/v2.0/networks", {"network": {"name": "odd\x00name"}})
        assert odd.status_code == 201, odd.text
        found = b.get("/network/v2.0/networks?name=odd%00name").json()["networks"]
        assert [n["id"] for n in found] == [odd.json()["network"]["id"]]
        assert b.get("/compute/v2.1/servers/a%00b").status_code == 404
    # Nothing of the API's records went to either root's SQLite file.
    for root in (one, other):
        state = Layout(root).state_db
        if state.exists():
            done = subprocess.run([sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1])"
                                   ".execute(\"SELECT name FROM sqlite_master WHERE name LIKE 'api_%'\").fetchall())",
                                   str(state)], capture_output=True, text=True, check=True)
            assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("database, error", [
    ("mysql://db/x", "key 'database': 'mysql://db/x' is not a postgresql:// URI"),
    ("postgresql://host/db?sslmode", "key 'database': malformed URI"),
    ("postgresql:///?host=/run/postgresql", "key 'database': the URI names no database"),
    ("5432", "key 'database': 5432 is not a postgresql:// URI"),  # YAML reads a number
])
def test_a_bad_database_value_is_refused_naming_the_key(tmp_path: Path, database: str, error: str) -> None:
    root = tmp_path / "root"
    _root(root, database)
    done = subprocess.run([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    message = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(message) == 1 and str(config_path(Layout(root))) in message[0] and error in message[0], done.stderr


def test_an_unreachable_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    gone = tmp_path / "no-such-socket-dir"
    _root(root, f"postgresql:///x?host={gone}&connect_timeout={CONNECT_TIMEOUT}")
    done = subprocess.run([str(REPO / "bin" / "provision"), "serve", "--root", str(root), "--port", "0"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    message = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(message) == 1 and "key 'database': cannot connect" in message[0] and str(gone) in message[0], \
        done.stderr


def test_a_database_gone_away_is_a_503_with_a_message_not_a_hang(tmp_path: Path) -> None:
    if pg.skip_reason():
        pytest.skip(pg.skip_reason())
    # A cluster of its own: the session's must outlive this test.
    with pg.postgres() as cluster:
        root = _root(tmp_path / "root", cluster.createdb())
        with serving(root) as served:
            client = Client(served.port)
            assert client.get("/compute/v2.1/servers").status_code == 200
            cluster.stop()
            resp = client.get("/compute/v2.1/servers")
            assert resp.status_code == 503, resp.text
            assert resp.json()["computeFault"]["message"].startswith("the API's database is unavailable")
            # Back once PostgreSQL is: the broken connections are replaced, not kept failing.
            cluster.start()
            assert client.get("/compute/v2.1/servers").status_code == 200


def test_a_password_in_the_uri_stays_in_config_yaml_0600_through_account_changes(tmp_path: Path) -> None:
    uri = "postgresql://api:pg-secret-pw@/provisioner?host=/run/postgresql"
    layout = Layout(_root(tmp_path / "root", uri))
    set_user(config_path(layout), "carol", PASSWORD, "demo", ["member"])  # rewrites the file (write_document)
    config = config_path(layout)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert load_config(config).database == uri
    # Nowhere else under the root: not in the state database, not in a log.
    assert [p for p in layout.root.rglob("*") if p.is_file() and p != config and b"pg-secret-pw" in p.read_bytes()] \
        == []


def _wait_for(client: Client, path: str, done: Callable[[requests.Response], bool]) -> requests.Response:
    """GET `path` until `done` says so (or 120 s: the test fails with the last answer)."""
    deadline = time.monotonic() + 120
    while True:
        resp = client.get(path)
        if done(resp) or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def test_a_server_built_through_one_root_is_destroyed_through_the_other(tmp_path: Path, postgres_uri: str,
                                                                       qcow2_file: Path) -> None:
    # One hypervisor for both roots: the same simulated node file (its flock serialises the two processes).
    node = tmp_path / "hypervisor" / "node.xml"
    one, other = _root(tmp_path / "one", postgres_uri), _root(tmp_path / "other", postgres_uri)
    for root in (one, other):
        with config_path(Layout(root)).open("a") as out:
            out.write(f"libvirt_uri: test://{node}\n")
    image = ImageStore(Layout(one)).import_source(str(qcow2_file), "cirros")
    with serving(one) as first:
        a = Client(first.port)
        server = a.post("/compute/v2.1/servers", {"server": {
            "name": "built-by-one", "flavorRef": "1", "imageRef": image.id, "networks": "none"}})
        assert server.status_code == 202, server.text
        server_id = server.json()["server"]["id"]
        path = f"/compute/v2.1/servers/{server_id}"
        built = _wait_for(a, path, lambda r: r.json()["server"]["status"] != "BUILD")
        assert built.json()["server"]["status"] == "ACTIVE", built.text
    [domain] = _domains(node)  # its only domain, the server's
    # The first root's API is gone: only the other one can run the delete, from the state in PostgreSQL.
    assert not (other / "domains" / domain).exists()
    with serving(other) as second:
        b = Client(second.port)
        assert b.delete(path).status_code == 204
        gone = _wait_for(b, path, lambda r: r.status_code == 404)
        assert gone.status_code == 404, gone.text
    assert _domains(node) == []
    assert not (other / "domains" / domain).exists()
    for root in (one, other):  # no Terraform state file under either root: it lives in PostgreSQL
        assert [p for p in root.rglob("terraform.tfstate*") if ".terraform" not in p.parts] == []


def _domains(node: Path) -> list[str]:
    conn = open_readonly(f"test://{node}")
    try:
        return sorted(d.name() for d in conn.listAllDomains())
    finally:
        conn.close()


# A stand-in for the `terraform` on PATH of the root that gets killed: its domain applies create the disk and the
# seed (the real Terraform, on the real state), say so in MARK, and then hang where the domain would be created,
# so the test kills the node with a build observably half done. Every other command is the real Terraform's.
_HALTING_TERRAFORM = """#!/bin/sh
case "$PWD" in
  {domains}/*)
    if [ "$1" = apply ]; then
      {real} apply -input=false -auto-approve -no-color -lock-timeout=600s \\
          -target=libvirt_volume.disk -target=libvirt_volume.seed >> {mark}.log 2>&1 || exit 1
      touch {mark}
      exec sleep 600
    fi;;
esac
exec {real} "$@"
"""


def test_a_build_whose_node_is_killed_is_finished_by_the_other_node(tmp_path: Path, postgres_uri: str,
                                                                    qcow2_file: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Two API nodes, one hypervisor (one simulated node file, outside both roots, as a remote host would be).
    node = tmp_path / "hypervisor" / "node.xml"
    one, other = _root(tmp_path / "one", postgres_uri), _root(tmp_path / "other", postgres_uri)
    for root in (one, other):
        with config_path(Layout(root)).open("a") as out:
            out.write(f"libvirt_uri: test://{node}\n")
    image = ImageStore(Layout(one)).import_source(str(qcow2_file), "cirros")
    monkeypatch.setenv("PROVISION_JOB_LEASE", "3")  # the other node takes over 3 s after the last renewal
    monkeypatch.setenv("PROVISION_WARM_PROVIDER", "0")  # no provider of the killed node outlives it
    mark, bin_dir = tmp_path / "halted", tmp_path / "bin"
    bin_dir.mkdir()
    real = subprocess.run(["sh", "-c", "command -v terraform"], capture_output=True, text=True, check=True).stdout
    (bin_dir / "terraform").write_text(_HALTING_TERRAFORM.format(domains=Layout(one).domains, real=real.strip(),
                                                                 mark=mark))
    (bin_dir / "terraform").chmod(0o755)
    path = "/compute/v2.1/servers/"
    with monkeypatch.context() as halting:
        halting.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        with serving(one, stop=signal.SIGKILL) as first:  # leaving the block kills the node, Terraform and all
            server = Client(first.port).post("/compute/v2.1/servers", {"server": {
                "name": "failover", "flavorRef": "1", "imageRef": image.id, "networks": "none"}})
            assert server.status_code == 202, server.text
            path += server.json()["server"]["id"]
            deadline = time.monotonic() + 120
            while not mark.exists():
                assert time.monotonic() < deadline, "the first node's build never got half way"
                time.sleep(0.2)
    [pool] = _pools(node)
    assert pool[0] == "provisioner" and pool[1] == str(Layout(one).pool)
    half = set(pool[2])
    assert len(half) == 3, half  # the base image, the disk and the seed; no domain yet
    assert _domains(node) == []
    # The killed node's host is gone with its root: nothing of it (image file, plans, keys) is there to use.
    one.rename(tmp_path / "one-gone")
    with serving(other) as second:
        b = Client(second.port)
        shown = b.get(path)
        assert shown.status_code == 200 and shown.json()["server"]["status"] == "BUILD", shown.text
        built = _wait_for(b, path, lambda r: r.json()["server"]["status"] != "BUILD")
        assert built.json()["server"]["status"] == "ACTIVE", built.text
    # One domain, on one pool (the one the first node made, where it made it), and no volume twice: the base and
    # the disk were kept, the seed (its ssh host keys are each node's own) replaced.
    domain = f"srv-{path.rsplit('/', 1)[1]}"
    assert _domains(node) == [domain]
    [after] = _pools(node)
    assert after[:2] == pool[:2]
    volumes = set(after[2])
    assert len(volumes) == 3 and len(volumes & half) == 2, (half, volumes)
    assert sorted(v.split("-seed-")[0] for v in volumes - half) == [domain]


def _pools(node: Path) -> list[tuple[str, str, list[str]]]:
    """(name, target path, volume names) of every storage pool of the simulated hypervisor."""
    conn = open_readonly(f"test://{node}")
    try:
        out = []
        for pool in conn.listAllStoragePools():
            path = pool.XMLDesc().split("<path>", 1)[1].split("</path>", 1)[0]
            out.append((pool.name(), path, sorted(pool.listVolumes())))
        return sorted(out)
    finally:
        conn.close()
