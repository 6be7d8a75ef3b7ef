"""Layering (depends_on, --existing) on the embedded simulated hypervisor, and its parts on their own.

The end-to-end layer job over SSH is in tests/postboot/test_layering_loopback.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml
from test_apply import add_domain, hypervisor, provision, set_conf

from provisioner.hostkeys import host_keys_for, known_hosts_name, parse_keys
from provisioner.keys import ensure_keys
from provisioner.layout import Layout
from provisioner.postboot.address import Address
from provisioner.postboot.layer_commands import (
    cloud_init_command,
    interfaces_file,
    network_command,
)
from provisioner.postboot.queue import queue_for
from provisioner.postboot.settings import PostbootSettings
from provisioner.render.cloudinit import layer_config_doc
from provisioner.spec.load import load_domain


def layered(domains: Path, name: str, on: str) -> Path:
    directory = add_domain(domains, name)
    set_conf(directory, "depends_on", on)
    set_conf(directory, "ips", "192.0.2.20/24")
    return directory


def test_depends_on_provisions_the_other_first_and_layers_without_a_vm(
        root: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layered(domains, "layer.test", "example.test")
    assert provision(root, domains, "layer.test") == 0
    out = capsys.readouterr().out
    assert "layer.test: layered on example.test (no VM of its own)" in out and "post-boot step is skipped" in out
    hv = hypervisor(root)
    assert set(hv["domains"]) == {"example.test"}
    assert not any("layer.test" in v for v in hv["volumes"])
    workspace = Layout(root).domain_dir("layer.test")
    assert sorted(p.name for p in workspace.iterdir()) == [
        "keys", "layer.json", "lock", "postboot", "spec.json", "ssh", "status.json"]
    assert json.loads((workspace / "layer.json").read_text())["machine"] == "example.test"
    # The machine is example.test's: its host key is the one pinned.
    owner_key = (Layout(root).domain_dir("example.test") / "keys" / "ssh_host_ed25519_key.pub").read_text()
    assert (workspace / "ssh" / "known_hosts").read_text() == f"layer.test {' '.join(owner_key.split()[:2])}\n"
    jobs = queue_for(Layout(root), PostbootSettings()).list()
    assert [(j.domain, j.kind, j.state) for j in jobs] == [("example.test", "setup", "skipped"),
                                                           ("layer.test", "layer", "skipped")]
    assert provision(root, domains, "layer.test") == 0
    assert "layer.test: unchanged on example.test" in capsys.readouterr().out
    assert len(queue_for(Layout(root), PostbootSettings()).list()) == 2

    assert provision(root, domains, "status", "--json") == 0
    statuses = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert statuses["layer.test"]["state"] == "layered on example.test"
    assert statuses["layer.test"]["addresses"] == ["192.0.2.20"]
    assert statuses["example.test"]["state"] == "running"


def test_destroying_a_layered_domain_leaves_the_machine(root: Path, domains: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    layered(domains, "layer.test", "example.test")
    assert provision(root, domains, "layer.test") == 0
    before = _without_cpu_time(hypervisor(root))
    owner = Layout(root).domain_dir("example.test")
    owner_files = sorted(str(p.relative_to(owner)) for p in owner.rglob("*"))
    capsys.readouterr()
    assert provision(root, domains, "destroy", "layer.test", "--yes") == 0
    assert "removed its workspace only; the machine (example.test) was not touched" in capsys.readouterr().out
    assert not Layout(root).domain_dir("layer.test").exists()
    assert _without_cpu_time(hypervisor(root)) == before
    assert sorted(str(p.relative_to(owner)) for p in owner.rglob("*")) == owner_files


def _without_cpu_time(hv: dict[str, object]) -> dict[str, object]:
    domains = hv["domains"]
    assert isinstance(domains, dict)
    return {**hv, "domains": {name: (info[:4], *rest) for name, (info, *rest) in domains.items()}}


def test_a_chain_layers_onto_the_root_of_the_chain(root: Path, domains: Path) -> None:
    layered(domains, "b.test", "example.test")
    layered(domains, "a.test", "b.test")
    assert provision(root, domains, "a.test") == 0
    assert set(hypervisor(root)["domains"]) == {"example.test"}
    record = json.loads((Layout(root).domain_dir("a.test") / "layer.json").read_text())
    assert (record["on"], record["machine"]) == ("b.test", "example.test")
    assert json.loads((Layout(root).domain_dir("b.test") / "layer.json").read_text())["machine"] == "example.test"


def test_a_cycle_is_refused_naming_it_before_anything_is_written(
        root: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layered(domains, "a.test", "b.test")
    layered(domains, "b.test", "c.test")
    layered(domains, "c.test", "a.test")
    assert provision(root, domains, "a.test") == 2
    assert "key 'depends_on': a cycle: a.test -> b.test -> c.test -> a.test" in capsys.readouterr().err
    assert not root.exists()


def test_existing_with_an_unknown_host_key_is_refused_with_the_how_to(
        root: Path, domains: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "operator"))
    assert provision(root, domains, "example.test", "--existing", "127.0.0.1:2222") == 1
    err = capsys.readouterr().err
    assert "host key is unknown ([127.0.0.1]:2222 is not in" in err
    assert f"ssh-keyscan -p 2222 127.0.0.1 >> {tmp_path}/operator/.ssh/known_hosts" in err and "--host-key" in err
    assert not root.exists()


def test_host_keys_come_from_known_hosts_or_a_key_file(tmp_path: Path) -> None:
    ensure_keys(tmp_path / "keys", "m")
    public = (tmp_path / "keys" / "ssh_host_ed25519_key.pub").read_text().strip()
    key = " ".join(public.split()[:2])
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"other.example {key}\n[127.0.0.1]:2222 {key}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
    found = host_keys_for(Address("127.0.0.1", 2222), known_hosts=known_hosts)
    assert found.keys == (key,) and "ED25519" in found.fingerprints[0]
    assert known_hosts_name(Address("h.example")) == "h.example"
    assert host_keys_for(Address("127.0.0.1", 2222), tmp_path / "keys" / "ssh_host_ed25519_key.pub").keys == (key,)
    assert parse_keys(f"# comment\n@revoked * {key}\n\n{public}\n") == (key,)


def test_layer_cloud_config_holds_the_domains_users_and_packages(root: Path, domains: Path, tmp_path: Path) -> None:
    set_conf(domains / "example.test", "packages", "nginx")
    spec = load_domain("example.test", domains, Layout(root))
    keys = ensure_keys(tmp_path / "keys", "example.test")
    doc = layer_config_doc(spec, keys)
    assert set(doc) == {"users", "package_update", "package_upgrade", "packages"}
    assert doc["packages"] == ["at", "make", "nginx"] and doc["package_upgrade"] is False
    admin = next(u for u in doc["users"] if u["name"] == "root")
    assert keys.login_public in admin["ssh_authorized_keys"]
    set_conf(domains / "example.test", "install_packages", "no")
    assert set(layer_config_doc(load_domain("example.test", domains, Layout(root)), keys)) == {"users"}


def test_cloud_init_command_runs_the_modules_on_the_pushed_file() -> None:
    path = PurePosixPath("/home/u/.provisioner/jobs/a b/layer.cfg")
    users_only = cloud_init_command(path, packages=False)
    assert "cloud-init --file '/home/u/.provisioner/jobs/a b/layer.cfg' single --name users_groups " \
           "--frequency always" in users_only
    assert "package_update_upgrade_install" not in users_only
    assert "single --name package_update_upgrade_install --frequency always" in cloud_init_command(path, True)
    assert str(interfaces_file("www.example.test")) == "/etc/network/interfaces.d/60-provisioner-www_example_test"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_network_command_adds_the_addresses_now_and_for_the_next_boot(tmp_path: Path) -> None:
    # In a network and mount namespace of its own: a veth pair carrying the default route (no
    # traffic is sent), and /etc overlaid so the ifupdown file is written into tmp_path.
    (tmp_path / "upper").mkdir()
    (tmp_path / "work").mkdir()
    command = network_command("layer.test", ["192.0.2.20/24", "198.51.100.7/32"])
    setup = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/upper,workdir={tmp_path}/work /etc"
             " && mkdir -p /etc/network && echo 'source /etc/network/interfaces.d/*' > /etc/network/interfaces"
             " && ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up"
             " && ip addr add 10.9.0.1/24 dev v0 && ip route add default via 10.9.0.254 dev v0")
    script = f"{setup} && {command} && {command} && ip -4 -o addr show dev v0"
    done = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added 192.0.2.20/24 to v0" in done.stdout and "198.51.100.7/32" in done.stdout.splitlines()[-1]
    written = (tmp_path / "upper" / "network" / "interfaces.d" / "60-provisioner-layer_test").read_text()
    assert written == ("# provisioner: addresses of the layered domain layer.test\n"
                       "iface v0 inet static\n    address 192.0.2.20/24\n\n"
                       "iface v0 inet static\n    address 198.51.100.7/32\n\n")
    no_ifupdown = ("ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up"
                   f" && ip route add default dev v0 && {command}")
    without = subprocess.run(["unshare", "--net", "sh", "-c", no_ifupdown], capture_output=True, text=True,
                             timeout=30, check=False)
    assert without.returncode == 0 and "last until the next reboot" in without.stdout


def test_yaml_of_the_layer_config_is_a_cloud_config(root: Path, domains: Path) -> None:
    layered(domains, "layer.test", "example.test")
    assert provision(root, domains, "layer.test") == 0
    text = (Layout(root).domain_dir("layer.test") / "postboot" / "layer.cfg").read_text()
    assert text.startswith("#cloud-config\n") and "users" in yaml.safe_load(text)
