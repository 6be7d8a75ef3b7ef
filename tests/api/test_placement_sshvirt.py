"""Placement on two real libvirtd reached over qemu+ssh (tests/sshvirt.py), through the API: servers spread by
free RAM, each built on its own hypervisor with that hypervisor's shared workspace (pool + base image) applied
once, a volume made on one of them and attached only to the server there, and deleted there.

Each hypervisor sees the test's scratch directory empty (`Hypervisor.private`), as a remote host would: what
reaches its pool travels over the ssh connection. The guests need not boot (a blank qcow2 under TCG).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import realvirt
import sshvirt

from apitest import Live, qcow2_file, serve_root  # noqa: F401 (fixtures)

# Capacity overrides: hv1 has more free RAM at first, so the first m1.small (2048 MiB) goes there, the second
# to hv0 (3072 free against hv1's 2048 left).
MEMORY_MB = (3072, 4096)


def _virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", uri, *args], check=check, capture_output=True, text=True, timeout=120)


def _domains(uri: str) -> set[str]:
    return set(_virsh(uri, "list", "--all", "--name").stdout.split())


def _call(live: Live, method: str, path: str, user: str = "alice", **kwargs: Any) -> requests.Response:
    headers = {"X-Auth-Token": live.token(user)}
    return requests.request(method, f"{live.url}/compute/v2.1{path}", headers=headers, timeout=60, **kwargs)


def _settled(live: Live, server_id: str, want: tuple[str, ...] = ("ACTIVE", "ERROR")) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        resp = _call(live, "GET", f"/servers/{server_id}", user="admin")
        if resp.status_code == 404 and "GONE" in want:
            return {}
        server = resp.json()["server"]
        if server["status"] in want:
            return server
        time.sleep(0.5)
    raise AssertionError(f"server {server_id} never reached {want}")


def _volume_on_its_hypervisor(live: Live, placed: dict[str, str], by_name: dict[str, sshvirt.Hypervisor]) -> str:
    """A blank volume is made in one hypervisor's pool, over ssh; attaching it to the server on the other is
    refused naming both, to the one on its own hypervisor is done there. The volume's id."""
    headers = {"X-Auth-Token": live.token("alice")}
    resp = requests.post(f"{live.url}/volume/v3/volumes", json={"volume": {"size": 1, "name": "data"}},
                         headers=headers, timeout=60)
    assert resp.status_code == 202, resp.text
    volume_id = resp.json()["volume"]["id"]
    deadline = time.monotonic() + 300
    while (volume := requests.get(f"{live.url}/volume/v3/volumes/{volume_id}", timeout=60, headers={
            "X-Auth-Token": live.token("admin")}).json()["volume"])["status"] == "creating":
        assert time.monotonic() < deadline, "the volume was never made"
        time.sleep(0.5)
    assert volume["status"] == "available", volume
    host = volume["os-vol-host-attr:host"].split("@")[0]
    other = next(name for name in by_name if name != host)
    assert f"vol-{volume_id}.qcow2" in _virsh(by_name[host].uri, "vol-list", "provisioner").stdout
    assert f"vol-{volume_id}" not in _virsh(by_name[other].uri, "vol-list", "provisioner").stdout
    servers = {name: server_id for server_id, name in placed.items()}
    refused = _call(live, "POST", f"/servers/{servers[other]}/os-volume_attachments",
                    json={"volumeAttachment": {"volumeId": volume_id}})
    assert refused.status_code == 400, refused.text
    assert f"the instance is on {other}" in refused.text and f"the volume on {host}" in refused.text
    attached = _call(live, "POST", f"/servers/{servers[host]}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": volume_id}})
    assert attached.status_code == 200, attached.text
    while (status := requests.get(f"{live.url}/volume/v3/volumes/{volume_id}", headers=headers,
                                  timeout=60).json()["volume"]["status"]) == "attaching":
        assert time.monotonic() < deadline, "the attach never finished"
        time.sleep(0.5)
    assert status == "in-use"
    assert f"vol-{volume_id}.qcow2" in _virsh(by_name[host].uri, "domblklist", f"srv-{servers[host]}").stdout
    return volume_id


def test_servers_spread_over_two_ssh_hypervisors_by_free_ram(ssh_hypervisors: list[sshvirt.Hypervisor],
                                                              tmp_path: Path, qcow2_file: Path) -> None:
    hv0, hv1 = ssh_hypervisors
    root = tmp_path / "root"
    entries = "".join(f"- {{name: {hv.name}, uri: '{hv.uri}', memory_mb: {memory}, cpus: 4, disk_gb: 50, "
                      f"domain_type: qemu}}\n" for hv, memory in zip(ssh_hypervisors, MEMORY_MB))
    with hv0.private(tmp_path), hv1.private(tmp_path):
        for hv in ssh_hypervisors:
            hv.run("mkdir", "-p", str(root))  # what an operator prepares there: the pool's parent
        built: list[str] = []
        try:
            with serve_root(root, f"hypervisors:\n{entries}") as live:
                image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                                 "cirros", "-f", "json")["id"]
                placed = {}
                for index in range(2):
                    resp = _call(live, "POST", "/servers", json={"server": {
                        "name": f"spread{index}", "imageRef": image, "flavorRef": "2", "networks": "none"}})
                    assert resp.status_code == 202, resp.text
                    server = _settled(live, resp.json()["server"]["id"])
                    assert server["status"] == "ACTIVE", server.get("fault")
                    built.append(f"srv-{server['id']}")
                    placed[server["id"]] = server["OS-EXT-SRV-ATTR:host"]
                assert list(placed.values()) == [hv1.name, hv0.name], "each to the most free RAM"
                by_name = {hv.name: hv for hv in ssh_hypervisors}
                for server_id, host in placed.items():
                    assert _domains(by_name[host].uri) == {f"srv-{server_id}"}, by_name[host].log()
                # One shared workspace (pool + base image) per hypervisor, each applied on its own host.
                assert len(list(live.layout.shared.glob("*/terraform/terraform.tfstate"))) == 2
                for hv in ssh_hypervisors:
                    assert "base-" in _virsh(hv.uri, "vol-list", "provisioner").stdout
                hypervisors = _call(live, "GET", "/os-hypervisors/detail", user="admin").json()["hypervisors"]
                used = {h["hypervisor_hostname"]: (h["memory_mb"], h["memory_mb_used"]) for h in hypervisors}
                assert used == {hv0.name: (MEMORY_MB[0], 2048), hv1.name: (MEMORY_MB[1], 2048)}

                volume_id = _volume_on_its_hypervisor(live, placed, by_name)

                for server_id in placed:
                    assert _call(live, "DELETE", f"/servers/{server_id}").status_code == 204
                for server_id in placed:
                    _settled(live, server_id, want=("GONE",))
                for hv in ssh_hypervisors:
                    assert _domains(hv.uri) == set()
                # Released by its server's delete, the volume is deleted from its hypervisor's pool.
                volume_url = f"{live.url}/volume/v3/volumes/{volume_id}"
                alice = {"X-Auth-Token": live.token("alice")}
                deadline = time.monotonic() + 300
                while requests.get(volume_url, headers=alice, timeout=60).json()["volume"]["status"] != "available":
                    assert time.monotonic() < deadline, "the volume was never released"
                    time.sleep(0.5)
                assert requests.delete(volume_url, headers=alice, timeout=60).status_code == 202
                while requests.get(volume_url, headers=alice, timeout=60).status_code != 404:
                    assert time.monotonic() < deadline, "the volume was never deleted"
                    time.sleep(0.5)
                for hv in ssh_hypervisors:
                    assert f"vol-{volume_id}" not in _virsh(hv.uri, "vol-list", "provisioner").stdout
        finally:
            for hv in ssh_hypervisors:
                for name in built:
                    _virsh(hv.uri, "destroy", name, check=False)
                    _virsh(hv.uri, "undefine", name, check=False)
            realvirt.destroy_shared(root)
