"""Security groups enforced on a real libvirtd reached over qemu+ssh (tests/sshvirt.py), through the API: a server's
port gets a libvirt nwfilter from its groups' rules, libvirtd instantiates it as iptables rules in the hypervisor's
own network namespace (and ebtables rules holding the guest to its port's MAC and address), a rule added afterwards
reaches the running guest's filter, and the server's delete removes it. The guest need not boot (a blank qcow2
under TCG; its NIC on the hypervisor's bridge, the default network): what is checked is the kernel's rule set for
its interface.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import requests

import realvirt
import sshvirt

from apitest import Live, qcow2_file, serve_root  # noqa: F401 (fixtures)


def _virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", uri, *args], check=check, capture_output=True, text=True, timeout=120)


def _call(live: Live, method: str, path: str, user: str = "alice", **kwargs: Any) -> requests.Response:
    resp = requests.request(method, f"{live.url}{path}", headers={"X-Auth-Token": live.token(user)}, timeout=60,
                            **kwargs)
    assert resp.status_code < 300, resp.text
    return resp


def _until(check: Any, what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.5)
    return found


def _settled(live: Live, server_id: str) -> dict[str, Any] | None:
    server = _call(live, "GET", f"/compute/v2.1/servers/{server_id}").json()["server"]
    return None if server["status"] == "BUILD" else server


def _rules(hv: sshvirt.Hypervisor) -> str:
    """The IPv4 filter table of the hypervisor's network namespace."""
    return hv.run("iptables-save", "-t", "filter").stdout


def test_security_groups_become_the_guest_ports_iptables_rules(real_libvirtd: sshvirt.Hypervisor, tmp_path: Path,
                                                               qcow2_file: Path) -> None:
    hv = real_libvirtd
    root = tmp_path / "root"
    entry = f"- {{name: {hv.name}, uri: '{hv.uri}', memory_mb: 4096, cpus: 4, disk_gb: 50, domain_type: qemu}}\n"
    domain = None
    with hv.private(tmp_path):
        hv.run("mkdir", "-p", str(root))
        try:
            with serve_root(root, f"hypervisors:\n{entry}") as live:
                image = live.osc("alice", "image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2",
                                 "cirros", "-f", "json")["id"]
                group = _call(live, "POST", "/network/v2.0/security-groups",
                              json={"security_group": {"name": "web"}}).json()["security_group"]["id"]
                _call(live, "POST", "/network/v2.0/security-group-rules", json={"security_group_rule": {
                    "security_group_id": group, "direction": "ingress", "protocol": "tcp",
                    "port_range_min": 8080, "port_range_max": 8080, "remote_ip_prefix": "192.0.2.0/24"}})
                # A subnet on the bridge network: the server's port gets a fixed address to hold the guest to.
                network = _call(live, "GET", "/network/v2.0/networks?name=default").json()["networks"][0]["id"]
                _call(live, "POST", "/network/v2.0/subnets", user="admin", json={"subnet": {
                    "network_id": network, "ip_version": 4, "cidr": "198.51.100.0/24"}})
                server = _call(live, "POST", "/compute/v2.1/servers", json={"server": {
                    "name": "web1", "imageRef": image, "flavorRef": "1", "networks": "auto",
                    "security_groups": [{"name": "web"}]}}).json()["server"]["id"]
                domain = f"srv-{server}"
                shown = _until(lambda: _settled(live, server), "the server never left BUILD")
                assert shown["status"] == "ACTIVE", shown.get("fault")

                port = _call(live, "GET", f"/network/v2.0/ports?device_id={server}").json()["ports"][0]
                assert port["security_groups"] == [group]
                name = f"provisioner-port-{port['id']}"
                assert name in _virsh(hv.uri, "nwfilter-list").stdout
                assert f"filter='{name}'" in _virsh(hv.uri, "dumpxml", domain).stdout
                # Anti-spoofing: what the guest sends (ebtables' libvirt-I-<tap>) carries its MAC and fixed address.
                mac, address = port["mac_address"], port["fixed_ips"][0]["ip_address"]
                sent = hv.run("ebtables", "-t", "nat", "-L").stdout.splitlines()
                accept, drop = f"-p IPv4 -s {mac} --ip-src {address} -j ACCEPT", "-p IPv4 -j DROP"
                assert accept in sent and drop in sent and sent.index(accept) < sent.index(drop), sent
                assert "-p ARP -j DROP" in sent and f"-s ! {mac} -j DROP" in sent, sent
                # Instantiated for the guest's interface: the allowed port from the allowed prefix, the rest dropped.
                rules = _rules(hv)
                # FO-<tap>: traffic to the guest (libvirt-out, --physdev-out); new connections only from the prefix.
                to_guest = [line for line in rules.splitlines() if line.startswith("-A FO-")]
                assert any("-s 192.0.2.0/24" in line and "--dport 8080" in line and "NEW" in line
                           for line in to_guest), rules
                assert to_guest[-1].endswith("-j DROP"), rules
                assert "--dport 2222" not in rules

                # A rule added to the running server's group reaches its filter (a SyncFirewall job).
                added = _call(live, "POST", "/network/v2.0/security-group-rules", json={"security_group_rule": {
                    "security_group_id": group, "direction": "ingress", "protocol": "tcp",
                    "port_range_min": 2222, "port_range_max": 2222}}).json()["security_group_rule"]["id"]
                _until(lambda: "--dport 2222" in _rules(hv), "the added rule never reached the guest's filter")
                _call(live, "DELETE", f"/network/v2.0/security-group-rules/{added}")
                _until(lambda: "--dport 2222" not in _rules(hv), "the deleted rule stayed in the guest's filter")

                # Taking the group away leaves the port in no group: nothing is allowed any more.
                _call(live, "POST", f"/compute/v2.1/servers/{server}/action",
                      json={"removeSecurityGroup": {"name": "web"}})
                _until(lambda: "--dport 8080" not in _rules(hv), "the removed group's rule stayed")
                assert "<rule action='drop'" in _virsh(hv.uri, "nwfilter-dumpxml", name).stdout

                _call(live, "DELETE", f"/compute/v2.1/servers/{server}")
                _until(lambda: name not in _virsh(hv.uri, "nwfilter-list").stdout,
                       "the server's delete left its port's filter")
                assert domain not in _virsh(hv.uri, "list", "--all", "--name").stdout
                domain = None
        finally:
            if domain is not None:
                _virsh(hv.uri, "destroy", domain, check=False)
                _virsh(hv.uri, "undefine", domain, check=False)
            realvirt.destroy_shared(root)
