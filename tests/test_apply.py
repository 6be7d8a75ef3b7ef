"""provision / plan / destroy / status through the real terraform binary and the
embedded provider, on the embedded default hypervisor (libvirt's test driver,
persisted under the root)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import EXAMPLE, REPO
from provisioner.cli import main
from provisioner.layout import Layout
from provisioner.pipeline import Context, provision_spec
from provisioner.spec.load import load_domain
from provisioner.spec.model import DomainSpec


def provision(root: Path, domains: Path, *args: str) -> int:
    return main(["--root", str(root), "--domains", str(domains), "-q", *args])


def hypervisor(root: Path) -> dict[str, object]:
    """What the simulated hypervisor holds: domains (name -> xml) and volumes (pool/name)."""
    from provisioner.provider.simulator import open_readonly
    conn = open_readonly(Layout(root).simulator_uri)
    try:
        domains = {d.name(): d for d in conn.listAllDomains()}
        info = {name: (d.info(), d.XMLDesc(0), d.UUIDString(), d.isActive()) for name, d in domains.items()}
        volumes = sorted(f"{p.name()}/{v.name()}" for p in conn.listAllStoragePools() for v in p.listAllVolumes())
        return {"domains": info, "volumes": volumes, "pools": sorted(p.name() for p in conn.listAllStoragePools())}
    finally:
        conn.close()


def add_domain(domains: Path, name: str) -> Path:
    shutil.copytree(EXAMPLE, domains / name)
    return domains / name


def set_conf(directory: Path, key: str, value: str) -> None:
    conf = directory / "provision.conf"
    lines = [l for l in conf.read_text().splitlines() if l.split("=", 1)[0].strip() != key]
    conf.write_text("\n".join(lines + [f"{key} = {value}"]) + "\n")


def test_apply_creates_the_guest_and_reapply_changes_nothing(root: Path, domains: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "example.test") == 0
    out = capsys.readouterr().out
    assert "simulation" in out and "post-boot step is skipped" in out
    hv = hypervisor(root)
    info, xml, uuid, active = hv["domains"]["example.test"]
    assert active and info[1] == 1024 * 1024 and info[3] == 2  # maxMem KiB, vCPUs
    disk = [v for v in hv["volumes"] if "-disk-" in v]
    seed = [v for v in hv["volumes"] if "-seed-" in v]
    base = [v for v in hv["volumes"] if v.startswith("provisioner/base-")]
    assert len(disk) == len(seed) == len(base) == 1
    assert "52:54:00:" in xml
    workspace = root / "domains/example.test/terraform"
    assert (workspace / "terraform.tfstate").is_file()
    # Re-running changes nothing: Terraform's own plan is empty, nothing is recreated.
    assert provision(root, domains, "example.test") == 0
    assert "unchanged" in capsys.readouterr().out
    assert hypervisor(root)["domains"]["example.test"][2] == uuid
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(root / "terraform/terraformrc"), "TF_INPUT": "0"}
    # Built with the warm provider, the workspace was never initialised: a run by hand starts as any other.
    subprocess.run(["terraform", "init", "-no-color"], cwd=workspace, env=env, capture_output=True, check=True)
    plan = subprocess.run(["terraform", "plan", "-detailed-exitcode", "-no-color"], cwd=workspace, env=env,
                          capture_output=True, text=True)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_state_holds_no_secrets(root: Path, domains: Path) -> None:
    assert provision(root, domains, "example.test") == 0
    for state in root.rglob("terraform.tfstate*"):
        assert "PRIVATE KEY" not in state.read_text()
    for path in (root / "domains/example.test").rglob("*"):
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            assert path.stat().st_mode & 0o077 == 0, path


def test_memory_and_cpus_update_in_place(root: Path, domains: Path) -> None:
    assert provision(root, domains, "example.test") == 0
    uuid = hypervisor(root)["domains"]["example.test"][2]
    set_conf(domains / "example.test", "memory", "2048")
    set_conf(domains / "example.test", "cpus", "1")
    assert provision(root, domains, "example.test") == 0
    info, _, new_uuid, _ = hypervisor(root)["domains"]["example.test"]
    assert info[1] == 2048 * 1024 and info[3] == 1
    assert new_uuid == uuid


def _disk_capacity(root: Path, name: str) -> int:
    from provisioner.provider.simulator import open_readonly
    conn = open_readonly(Layout(root).simulator_uri)
    try:
        pool = conn.storagePoolLookupByName("provisioner")
        disk = next(v for v in pool.listAllVolumes() if v.name().startswith(f"{name}-disk-"))
        return disk.info()[1]
    finally:
        conn.close()


def test_a_larger_size_grows_in_place_a_smaller_replaces_only_with_yes(
        root: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The provider grows a volume in place (its data kept): no --yes needed; shrinking would replace the disk
    (its data lost), which the engine refuses without --yes, touching nothing."""
    assert provision(root, domains, "example.test") == 0
    before = hypervisor(root)
    set_conf(domains / "example.test", "size", str(20 * 1024**3))
    assert provision(root, domains, "example.test") == 0
    assert hypervisor(root)["volumes"] == before["volumes"], "the same volumes, the disk grown in place"
    assert _disk_capacity(root, "example.test") == 20 * 1024**3
    capsys.readouterr()
    set_conf(domains / "example.test", "size", str(10 * 1024**3))
    assert provision(root, domains, "example.test") != 0
    err = capsys.readouterr().err
    assert "libvirt_volume.disk" in err and "--yes" in err
    assert hypervisor(root)["volumes"] == before["volumes"]
    assert _disk_capacity(root, "example.test") == 20 * 1024**3
    assert provision(root, domains, "example.test", "--yes") == 0
    assert _disk_capacity(root, "example.test") == 10 * 1024**3
    assert hypervisor(root)["domains"]["example.test"][0]  # still there


def test_plan_shows_changes_without_applying(root: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert provision(root, domains, "example.test") == 0
    capsys.readouterr()
    set_conf(domains / "example.test", "memory", "1536")
    assert provision(root, domains, "plan", "example.test") == 0
    assert "libvirt_domain.guest" in capsys.readouterr().out
    assert hypervisor(root)["domains"]["example.test"][0][1] == 1024 * 1024


def test_destroy_matches_exactly(root: Path, domains: Path) -> None:
    add_domain(domains, "foo-test")
    add_domain(domains, "foo-test-bar")
    assert provision(root, domains, "foo-test") == 0
    assert provision(root, domains, "foo-test-bar") == 0
    assert provision(root, domains, "destroy", "foo-test", "--yes") == 0
    hv = hypervisor(root)
    assert set(hv["domains"]) == {"foo-test-bar"}
    assert not any(v.startswith("provisioner/foo-test-") and "foo-test-bar" not in v for v in hv["volumes"])
    assert any("foo-test-bar-disk-" in v for v in hv["volumes"])
    assert any(v.startswith("provisioner/base-") for v in hv["volumes"]), "shared base image must survive"
    assert hv["pools"] == ["provisioner"]
    assert not (root / "domains/foo-test").exists()
    assert (root / "domains/foo-test-bar/terraform/terraform.tfstate").exists()
    assert provision(root, domains, "destroy", "foo-test", "--yes") != 0  # gone is gone


def test_drift_is_recreated(root: Path, domains: Path) -> None:
    from provisioner.provider.simulator import transaction
    assert provision(root, domains, "example.test") == 0
    with transaction(Layout(root).simulator_uri) as session:
        dom = session.conn.lookupByName("example.test")
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    assert "example.test" not in hypervisor(root)["domains"]
    assert provision(root, domains, "example.test") == 0
    assert "example.test" in hypervisor(root)["domains"]


def test_status(root: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_domain(domains, "other.test")
    assert provision(root, domains, "example.test") == 0
    assert provision(root, domains, "render", "other.test") == 0
    capsys.readouterr()
    assert provision(root, domains, "status", "--json") == 0
    statuses = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert statuses["example.test"]["state"] == "running"
    assert statuses["example.test"]["addresses"] == ["192.0.2.10"]
    assert statuses["example.test"]["last_apply"]["state"] == "applied"
    assert statuses["other.test"]["state"] == "not applied"
    assert provision(root, domains, "status", "example.test") == 0
    assert "running" in capsys.readouterr().out


def _bin(root: Path, domains: Path, *args: str) -> list[str]:
    return [str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "-q", *args]


def test_concurrent_applies_of_different_domains(root: Path, domains: Path) -> None:
    names = ["a.test", "b.test", "c.test"]
    for name in names:
        add_domain(domains, name)
    procs = [subprocess.Popen(_bin(root, domains, name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name in names]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    hv = hypervisor(root)
    assert set(hv["domains"]) == set(names)
    assert len([v for v in hv["volumes"] if v.startswith("provisioner/base-")]) == 1


def test_killed_apply_converges_on_rerun(root: Path, domains: Path) -> None:
    log = root / "domains/example.test/logs/terraform.log"
    proc = subprocess.Popen(_bin(root, domains, "example.test"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # Kill the whole process group once the domain's own apply has started.
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and "terraform apply" in log.read_text() and "Creating..." in log.read_text():
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert provision(root, domains, "example.test") == 0
    hv = hypervisor(root)
    assert list(hv["domains"]) == ["example.test"]
    assert len([v for v in hv["volumes"] if "example.test-" in v]) == 2
    assert len([v for v in hv["volumes"] if v.startswith("provisioner/base-")]) == 1
    assert provision(root, domains, "example.test") == 0  # and now it is stable


def test_a_nic_nwfilter_reaches_the_domain_and_a_new_one_updates_in_place(root: Path, domains: Path) -> None:
    """The API's per-port filter (issue 12) as a DomainSpec's NIC nwfilter: the guest's interface references it."""
    ctx = Context(Layout(root), domains)
    base = load_domain("example.test", domains, ctx.layout)

    def with_filter(name: str) -> DomainSpec:
        return dataclasses.replace(base, nics=tuple(dataclasses.replace(n, nwfilter=name) for n in base.nics))

    def filters() -> list[str | None]:
        _, xml, _, active = hypervisor(root)["domains"]["example.test"]
        assert active
        return [i.get("filter") for i in ET.fromstring(xml).iter("filterref")]

    assert provision_spec(with_filter("provisioner-port-a"), ctx).outcome == "created"
    assert filters() == ["provisioner-port-a"]
    assert provision_spec(with_filter("provisioner-port-a"), ctx).outcome == "unchanged"
    assert provision_spec(with_filter("provisioner-port-b"), ctx).outcome == "updated"
    assert filters() == ["provisioner-port-b"]
    assert provision_spec(base, ctx).outcome == "updated"
    assert filters() == []
