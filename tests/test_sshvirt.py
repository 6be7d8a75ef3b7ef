"""Two real libvirtd reached over qemu+ssh (tests/sshvirt.py): pinned host keys, and the engine
building a guest on each over its ssh URI.

Each hypervisor sees the test's scratch directory empty (`Hypervisor.private`), as a remote host
would: the base image and the seed ISO can only reach its pool through the libvirt connection.
The guests need not boot (a blank qcow2 under TCG).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import realvirt
import sshvirt
from conftest import EXAMPLE, REPO
from provisioner.cli import main


def virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Stock virsh over the URI (it runs libvirt's ssh transport like any client)."""
    return subprocess.run(["virsh", "-c", uri, *args], check=check, capture_output=True, text=True, timeout=120)


def names(uri: str) -> set[str]:
    return set(virsh(uri, "list", "--all", "--name").stdout.split())


def test_each_daemon_lists_its_own_domains(ssh_hypervisors: list[sshvirt.Hypervisor], tmp_path: Path) -> None:
    assert len({hv.uri for hv in ssh_hypervisors}) == 2
    for hv in ssh_hypervisors:
        xml = tmp_path / f"{hv.name}.xml"
        xml.write_text(f"<domain type='qemu'><name>only-on-{hv.name}</name><memory unit='MiB'>16</memory>"
                       "<os><type arch='x86_64'>hvm</type></os></domain>")
        virsh(hv.uri, "define", str(xml))
    try:
        for hv in ssh_hypervisors:
            assert names(hv.uri) == {f"only-on-{hv.name}"}, hv.log()
        # Each answered from its own namespaces: libvirtd's state is not the host's.
        for hv in ssh_hypervisors:
            assert f"only-on-{hv.name}.xml" in hv.run("ls", "/etc/libvirt/qemu").stdout
            assert not Path(f"/etc/libvirt/qemu/only-on-{hv.name}.xml").exists()
    finally:
        for hv in ssh_hypervisors:
            virsh(hv.uri, "undefine", f"only-on-{hv.name}", check=False)
    assert all(names(hv.uri) == set() for hv in ssh_hypervisors)


def test_host_key_is_pinned(ssh_hypervisors: list[sshvirt.Hypervisor], tmp_path: Path) -> None:
    hv = ssh_hypervisors[0]
    pinned = hv.known_hosts.read_text()
    assert len(pinned.splitlines()) == 1 and pinned.startswith(f"{hv.name} ssh-ed25519 ")
    other = sshvirt.keypair(tmp_path / "other_host_key", "not the hypervisor's")
    try:
        hv.known_hosts.write_text(f"{hv.name} {other}\n")
        refused = virsh(hv.uri, "hostname", check=False)
        assert refused.returncode != 0
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
        assert "Host key verification failed" in refused.stderr

        # Unknown is refused too (StrictHostKeyChecking yes: never learnt on first use).
        hv.known_hosts.write_text("")
        refused = virsh(hv.uri, "hostname", check=False)
        assert refused.returncode != 0 and "Host key verification failed" in refused.stderr
        assert hv.known_hosts.read_text() == ""

        # Another hypervisor's key is not this one's.
        hv.known_hosts.write_text(f"{hv.name} {ssh_hypervisors[1].known_hosts.read_text().split(' ', 1)[1]}")
        assert virsh(hv.uri, "hostname", check=False).returncode != 0
    finally:
        hv.known_hosts.write_text(pinned)
    assert virsh(hv.uri, "hostname").returncode == 0


def test_root_login_takes_only_the_generated_key(ssh_hypervisors: list[sshvirt.Hypervisor], tmp_path: Path) -> None:
    hv = ssh_hypervisors[0]
    sshvirt.keypair(tmp_path / "stranger", "not authorised")
    uri = hv.uri.replace(f"keyfile={hv.keyfile}&", f"keyfile={tmp_path / 'stranger'}&")
    assert uri != hv.uri
    refused = virsh(uri, "hostname", check=False)
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr


# What the provider process does: open libvirt connections from gRPC's worker threads while gRPC polls.
# libvirt forks to run ssh; with gRPC's fork handlers on, some of those children died before exec.
OPENS_FROM_GRPC_THREADS = textwrap.dedent("""
    import concurrent.futures, sys
    from provisioner.provider.plugin import grpc_environment
    grpc_environment()
    import grpc, libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    uri, sock, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def open_close(request, context):
        try:
            conn = libvirt.open(uri)
            conn.getHostname()
            conn.close()
            return b"ok"
        except libvirt.libvirtError as exc:
            return str(exc).encode()

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.T", {"Open": grpc.unary_unary_rpc_method_handler(open_close)}),))
    server.add_insecure_port("unix://" + sock)
    server.start()
    call = grpc.insecure_channel("unix://" + sock).unary_unary("/t.T/Open")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: call(b"", timeout=120), range(count)))
    server.stop(0)
    print("\\n".join(a.decode() for a in answers))
""")


def test_provider_opens_ssh_connections_from_grpc_threads(ssh_hypervisors: list[sshvirt.Hypervisor],
                                                         tmp_path: Path) -> None:
    # Without grpc_environment(), 3 to 7 of 48 failed in each of five runs here.
    count = 48
    run = subprocess.run([sys.executable, "-c", OPENS_FROM_GRPC_THREADS, ssh_hypervisors[1].uri,
                          str(tmp_path / "grpc.sock"), str(count)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    answers = run.stdout.splitlines()
    assert answers == ["ok"] * count, [a for a in answers if a != "ok"][:3]


def _domain(domains: Path, name: str, ip: str, hv: sshvirt.Hypervisor) -> None:
    directory = domains / name
    shutil.copytree(EXAMPLE, directory)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(directory / "blank.qcow2"), "64M"], check=True)
    # No libvirt_uri here: a domain may not name a keyfile or command (the operator's --libvirt-uri may).
    (directory / "provision.conf").write_text(
        f"image = blank.qcow2\nips = {ip}/24\ngateway = 192.0.2.1\nmemory = 128\ncpus = 1\ndomain_type = qemu\n"
        f"bridge = {hv.bridge}\n")


def test_engine_builds_and_destroys_on_each_hypervisor(ssh_hypervisors: list[sshvirt.Hypervisor], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    hv0, hv1 = ssh_hypervisors
    domains = tmp_path / "domains-in"
    root = tmp_path / "root"
    _domain(domains, "a.test", "192.0.2.10", hv0)
    _domain(domains, "b.test", "192.0.2.11", hv1)
    base = (domains / "a.test" / "blank.qcow2").read_bytes()
    placed = {"a.test": hv0, "b.test": hv1}

    def provision(name: str, *argv: str) -> int:
        common = ["--root", str(root), "--domains", str(domains), "-q", *argv, name]
        if name == "a.test":
            return main(["--libvirt-uri", placed[name].uri, *common])
        # b.test as an operator would: bin/provision, the URI in the environment.
        run = subprocess.run([str(REPO / "bin" / "provision"), *common], capture_output=True, text=True,
                             env={**os.environ, "PROVISION_LIBVIRT_URI": placed[name].uri}, timeout=600)
        print(run.stdout, end="")
        print(run.stderr, end="", file=sys.stderr)
        return run.returncode

    with hv0.private(tmp_path), hv1.private(tmp_path):
        for hv in ssh_hypervisors:
            # What an operator prepares on each hypervisor: the root's directory, for the pool under it.
            hv.run("mkdir", "-p", str(root))
            assert hv.run("ls", "-A", str(tmp_path)).stdout.split() == ["root"]
        try:
            for name in placed:
                assert provision(name, "--no-wait") == 0, capsys.readouterr().err
            assert capsys.readouterr().out.count("created") == 2
            for name, hv in placed.items():
                assert names(hv.uri) == {name}
                assert "running" in virsh(hv.uri, "domstate", name).stdout
                assert "type='qemu'" in virsh(hv.uri, "dumpxml", name).stdout
                volumes = virsh(hv.uri, "vol-list", "provisioner").stdout
                assert f"{name}-disk-" in volumes and f"{name}-seed-" in volumes, hv.log()
                [base_volume] = [line.split()[0] for line in volumes.splitlines() if "base-blank-" in line]
                # The pool is on the hypervisor, under the same path as the engine's root: its own files.
                assert virsh(hv.uri, "pool-dumpxml", "provisioner").stdout.count(f"<path>{root}/pool</path>") == 1
                assert base_volume in hv.run("ls", f"{root}/pool").stdout
                # The base image travelled over the connection, byte for byte.
                copy = tmp_path / f"{name}.download"
                virsh(hv.uri, "vol-download", "--pool", "provisioner", base_volume, str(copy))
                assert hashlib.sha256(copy.read_bytes()).hexdigest() == hashlib.sha256(base).hexdigest()
            # One shared workspace (pool + base image) per hypervisor.
            assert len(list((root / "shared").glob("*/terraform/terraform.tfstate"))) == 2
            assert not (root / "pool").exists() or not any((root / "pool").iterdir())

            assert provision("a.test", "--no-wait") == 0
            assert "unchanged" in capsys.readouterr().out

            for name in placed:
                assert provision(name, "destroy", "--yes") == 0
            for name, hv in placed.items():
                assert names(hv.uri) == set()
                volumes = virsh(hv.uri, "vol-list", "provisioner").stdout
                assert f"{name}-" not in volumes and "base-blank-" in volumes
        finally:
            for name, hv in placed.items():
                virsh(hv.uri, "destroy", name, check=False)
                virsh(hv.uri, "undefine", name, check=False)
            realvirt.destroy_shared(root)
        for hv in ssh_hypervisors:
            assert "provisioner" not in virsh(hv.uri, "pool-list", "--all", "--name").stdout


# A client holding a connection while its host goes away: the provider's situation mid-apply.
CALL_AFTER_GO = textwrap.dedent("""
    import sys, libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    try:
        conn.listAllDomains()
        print("answered")
    except libvirt.libvirtError as exc:
        print("error:", exc)
""")


def test_connection_to_a_vanished_host_fails_instead_of_hanging(ssh_hypervisors: list[sshvirt.Hypervisor]) -> None:
    hv = ssh_hypervisors[1]
    client = subprocess.Popen([sys.executable, "-c", CALL_AFTER_GO, hv.uri], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdout.readline() == "open\n", client.stderr
        with hv.unreachable():
            # The watchdog only tells a hang from an answer: ssh's ServerAlive* give up after ~15 s.
            out, err = client.communicate("go\n", timeout=300)
    finally:
        client.kill()
    assert out.startswith("error:"), (out, err)
    assert virsh(hv.uri, "hostname").returncode == 0  # back on the network


def test_provision_on_an_unreachable_hypervisor_fails_with_the_reason(ssh_hypervisors: list[sshvirt.Hypervisor],
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    hv = ssh_hypervisors[1]
    domains = tmp_path / "domains-in"
    _domain(domains, "gone.test", "192.0.2.12", hv)
    root = tmp_path / "root"
    try:
        with hv.unreachable():
            assert main(["--root", str(root), "--domains", str(domains), "--libvirt-uri", hv.uri, "-q",
                         "gone.test", "--no-wait"]) != 0
    finally:
        realvirt.destroy_shared(root)
    err = capsys.readouterr().err
    assert "Cannot connect to libvirt" in err and hv.uri in err, err
    assert "fdpass_connect: 127.0.0.1:22: timed out" in err, err  # a host that went away does not answer
    assert "gone.test" not in names(hv.uri)
