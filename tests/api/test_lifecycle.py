"""Keypair, image, network and server lifecycle through the real openstack CLI on the simulated hypervisor."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import requests

from provisioner.provider.simulator import open_readonly

from apitest import live, qcow2_file  # noqa: F401 (fixtures)


def _domains(live) -> set[str]:
    conn = open_readonly(live.layout.simulator_uri)
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_server_lifecycle(live, qcow2_file: Path, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    created = live.osc("alice", "keypair", "create", "--public-key", f"{key}.pub", "k1", "-f", "json")
    assert created["name"] == "k1" and created["fingerprint"]
    assert "k1" in {k["Name"] for k in live.osc("alice", "keypair", "list", "-f", "json")}
    duplicate = live.osc("alice", "keypair", "create", "--public-key", f"{key}.pub", "k1", check=False)
    assert duplicate.returncode != 0 and "409" in duplicate.stderr

    image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                     "cirros", "-f", "json")
    assert image["status"] == "active" and image["checksum"]
    assert "cirros" in {i["Name"] for i in live.osc("alice", "image", "list", "-f", "json")}
    assert "cirros" not in {i["Name"] for i in live.osc("bob", "image", "list", "-f", "json")}, "private image"
    assert "default" in {n["Name"] for n in live.osc("alice", "network", "list", "-f", "json")}

    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\npackages: [htop]\nusers:\n  - name: ops\n    shell: /bin/bash\n")
    server = live.osc("alice", "server", "create", "--image", "cirros", "--flavor", "m1.tiny", "--key-name", "k1",
                      "--network", "default", "--user-data", str(user_data), "--wait", "vm1", "-f", "json")
    assert server["status"] == "ACTIVE", server
    domain = f"srv-{server['id']}"
    assert domain in _domains(live), "the engine defined the domain in the simulated libvirt"
    workspace = live.layout.domain_dir(domain)
    assert (workspace / "terraform" / "main.tf").is_file()
    assert json.loads((workspace / "terraform" / "terraform.tfstate").read_text())["resources"]
    spec = json.loads((workspace / "spec.json").read_text())
    assert spec["memory"] == 512 and spec["size"] == 1 << 30
    assert key.with_suffix(".pub").read_text().split()[1] in json.dumps(spec["users"])
    assert "htop" in spec["packages"] and "ops" in {u["name"] for u in spec["users"]}

    listed = {s["Name"]: s for s in live.osc("alice", "server", "list", "-f", "json")}
    assert listed["vm1"]["Image"] == "cirros", "server list names images through GET /images?id=in:…"
    assert listed["vm1"]["Status"] == "ACTIVE"
    by_name = live.osc("alice", "server", "list", "--name", "^vm[0-9]+$", "-f", "json")
    assert [s["Name"] for s in by_name] == ["vm1"], "--name is a regular expression, as in Nova"
    hostile = requests.get(f"{live.url}/compute/v2.1/servers", params={"name": "(.*.*)*=$"},
                           headers={"X-Auth-Token": live.token("alice")}, timeout=60)
    assert hostile.status_code == 200 and hostile.json()["servers"] == [], "matched literally, in linear time"
    shown = live.osc("alice", "server", "show", "vm1", "-f", "json")
    assert shown["id"] == server["id"]
    assert shown["addresses"]["default"], "addresses come from libvirt (the test driver makes one up)"
    assert "vm1" not in {s["Name"] for s in live.osc("bob", "server", "list", "-f", "json")}
    bob = {"X-Auth-Token": live.token("bob")}
    resp = requests.get(f"{live.url}/compute/v2.1/servers/{server['id']}", headers=bob, timeout=10)
    assert resp.status_code == 404 and resp.json()["itemNotFound"]["code"] == 404

    # Deleted as in Glance while a server runs from it; its version stays as long as vm1's disk is backed by it
    # (tests/api/test_image_pending_delete.py), and vm1 goes on working below.
    live.osc("alice", "image", "delete", "cirros")
    assert "cirros" not in {i["Name"] for i in live.osc("alice", "image", "list", "-f", "json")}

    live.osc("alice", "server", "stop", "vm1")
    _wait_status(live, server["id"], "SHUTOFF")
    live.osc("alice", "server", "start", "vm1")
    _wait_status(live, server["id"], "ACTIVE")
    live.osc("alice", "server", "pause", "vm1")
    _wait_status(live, server["id"], "PAUSED")
    live.osc("alice", "server", "unpause", "vm1")
    _wait_status(live, server["id"], "ACTIVE")
    live.osc("alice", "server", "reboot", "vm1")
    _wait_status(live, server["id"], "ACTIVE")
    conn = open_readonly(live.layout.simulator_uri)
    try:
        assert conn.lookupByName(domain).isActive(), "start persisted in the simulated hypervisor"
    finally:
        conn.close()

    console = workspace / "logs" / "console.log"
    assert f'path = "{console}"' in (workspace / "terraform" / "main.tf").read_text(), "a local hypervisor logs it"
    assert live.osc("alice", "console", "log", "show", "vm1") == "", "nothing written yet"
    # libvirt's test driver runs no guest, so nothing writes the serial log: the test stands in for qemu.
    console.write_bytes(b"boot\x00 line 1\nline 2\nlogin: \xff\n")
    shown = live.osc("alice", "console", "log", "show", "--lines", "2", "vm1")
    assert "line 2\nlogin: \ufffd" in shown and "line 1" not in shown
    resp = requests.post(f"{live.url}/compute/v2.1/servers/{server['id']}/action", timeout=10,
                         headers={"X-Auth-Token": live.token("alice")}, json={"os-getConsoleOutput": {"length": "2"}})
    assert resp.status_code == 400 and "os-getConsoleOutput.length" in resp.text

    live.osc("alice", "server", "delete", "--wait", "vm1")
    assert domain not in _domains(live)
    assert not workspace.exists()
    live.osc("alice", "keypair", "delete", "k1")
    assert live.osc("alice", "keypair", "list", "-f", "json") == []


def _wait_status(live, server_id: str, status: str) -> None:
    headers = {"X-Auth-Token": live.token("alice")}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=headers, timeout=10).json()
        if body["server"]["status"] == status and body["server"]["OS-EXT-STS:task_state"] is None:
            return
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} never reached {status}: {body}")
