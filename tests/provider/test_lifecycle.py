"""The embedded provider under real terraform, on a simulated (test:///) hypervisor."""

from __future__ import annotations

import json

import libvirt

from provisioner.provider import simulator

from .conftest import Site

VOLUMES = {"base-debian-12-0123456789ab.qcow2", "example.test-disk-0123456789ab.qcow2",
           "example.test-seed-0123456789ab.iso"}


def inventory(site: Site) -> dict[str, object]:
    """What the node file holds: domains (name -> state, memory KiB), volumes, pools."""
    conn = simulator.open_readonly(site.uri)
    try:
        domains = {d.name(): (d.state()[0], d.maxMemory()) for d in conn.listAllDomains()}
        pools = {p.name() for p in conn.listAllStoragePools()}
        volumes = {v.name() for p in conn.listAllStoragePools() for v in p.listAllVolumes()}
        return {"domains": domains, "pools": pools, "volumes": volumes}
    finally:
        conn.close()


def test_apply_noop_update_replace_destroy(shared_applied: Site) -> None:
    site = shared_applied
    ws = site.domain()
    ws.apply()

    inv = inventory(site)
    assert inv["domains"] == {"example.test": (libvirt.VIR_DOMAIN_RUNNING, 1024 * 1024)}
    assert inv["volumes"] == VOLUMES and inv["pools"] == {"provisioner"}
    code, out = ws.plan_exitcode()
    assert code == 0, out

    # The seed's content is recorded, not uploaded: url, size and digest.
    sidecar = json.loads(site.node.with_name("node.content.json").read_text())
    seed = sidecar["volumes"]["provisioner/example.test-seed-0123456789ab.iso"]
    assert seed["url"] == str(site.seed("example.test")) and seed["size"] == len(b"example.test") * 1000
    assert len(seed["sha256"]) == 64

    # Memory changes in place (same UUID), the guest keeps running.
    uuid_before = json.loads(ws.run("show", "-json").stdout)["values"]["root_module"]["resources"]
    site.rewrite_domain(ws, memory=2048)
    out = ws.apply().stdout
    assert "1 changed, 0 destroyed" in out, out
    assert inventory(site)["domains"] == {"example.test": (libvirt.VIR_DOMAIN_RUNNING, 2048 * 1024)}
    uuid_after = json.loads(ws.run("show", "-json").stdout)["values"]["root_module"]["resources"]
    assert _uuid(uuid_before) == _uuid(uuid_after)
    assert ws.plan_exitcode()[0] == 0

    # A larger capacity grows the disk volume in place (the test driver has no resize: a copy takes its name
    # back); a smaller one replaces it.
    site.rewrite_domain(ws, memory=2048, capacity=2 * 10737418240)
    out = ws.apply().stdout
    assert "1 changed, 0 destroyed" in out and "Destruction" not in out, out
    assert _capacity(site, "example.test-disk-0123456789ab.qcow2") == 2 * 10737418240
    assert ws.plan_exitcode()[0] == 0
    site.rewrite_domain(ws, memory=2048, capacity=10737418240)
    out = ws.apply().stdout
    assert "libvirt_volume.disk: Destruction complete" in out and "1 added" in out, out
    site.rewrite_domain(ws, memory=2048, capacity=2 * 10737418240)
    ws.apply()
    assert ws.plan_exitcode()[0] == 0

    # running = false shuts the guest off, in place.
    site.rewrite_domain(ws, memory=2048, capacity=2 * 10737418240, running=False)
    ws.apply()
    assert inventory(site)["domains"]["example.test"][0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert ws.plan_exitcode()[0] == 0

    ws.destroy()
    inv = inventory(site)
    assert inv["domains"] == {} and inv["volumes"] == {"base-debian-12-0123456789ab.qcow2"}
    assert inv["pools"] == {"provisioner"}


def _capacity(site: Site, name: str) -> int:
    conn = simulator.open_readonly(site.uri)
    try:
        return next(v.info()[1] for p in conn.listAllStoragePools() for v in p.listAllVolumes() if v.name() == name)
    finally:
        conn.close()


def _uuid(resources: list[dict]) -> str:
    return next(r["values"]["uuid"] for r in resources if r["type"] == "libvirt_domain")


def test_shared_workspace_noop_and_destroy(site: Site) -> None:
    ws = site.shared()
    ws.apply()
    assert ws.plan_exitcode()[0] == 0
    ws.destroy()
    assert inventory(site) == {"domains": {}, "pools": set(), "volumes": set()}


def test_drift_deleted_domain_is_recreated(shared_applied: Site) -> None:
    site = shared_applied
    ws = site.domain()
    ws.apply()
    with simulator.transaction(site.uri) as s:  # delete it behind Terraform's back
        dom = s.conn.lookupByName("example.test")
        dom.destroy()
        dom.undefine()
    code, out = ws.plan_exitcode()
    assert code == 2 and "libvirt_domain.guest will be created" in out, out
    ws.apply()
    assert set(inventory(site)["domains"]) == {"example.test"}
    assert ws.plan_exitcode()[0] == 0


def test_drift_deleted_volume_is_recreated(shared_applied: Site) -> None:
    site = shared_applied
    ws = site.domain()
    ws.apply()
    with simulator.transaction(site.uri) as s:
        s.conn.storagePoolLookupByName("provisioner").storageVolLookupByName(
            "example.test-seed-0123456789ab.iso").delete(0)
    code, out = ws.plan_exitcode()
    assert code == 2 and "libvirt_volume.seed will be created" in out, out
    ws.apply()
    assert inventory(site)["volumes"] == VOLUMES


def test_import_by_name_and_uuid(shared_applied: Site) -> None:
    site = shared_applied
    ws = site.domain()
    ws.apply()
    uuid = _uuid(json.loads(ws.run("show", "-json").stdout)["values"]["root_module"]["resources"])
    ws.run("state", "rm", "libvirt_domain.guest", "libvirt_volume.seed", "libvirt_volume.disk")
    ws.run("import", "libvirt_domain.guest", "example.test")
    ws.run("import", "libvirt_volume.seed", str(site.pool_dir / "example.test-seed-0123456789ab.iso"))
    ws.run("import", "libvirt_volume.disk", "provisioner/example.test-disk-0123456789ab.qcow2")
    code, out = ws.plan_exitcode()
    assert code == 0, out

    ws.run("state", "rm", "libvirt_domain.guest")
    ws.run("import", "libvirt_domain.guest", uuid)
    assert ws.plan_exitcode()[0] == 0

    shared = site.workspace("shared/terraform", (site.root / "shared/terraform/main.tf").read_text(), init=False)
    shared.run("state", "rm", "libvirt_pool.pool")
    shared.run("import", "libvirt_pool.pool", "provisioner")
    assert shared.plan_exitcode()[0] == 0

    missing = ws.run("import", "libvirt_domain.other", "nope", check=False)
    assert missing.returncode != 0


def test_concurrent_applies_share_one_node_file(shared_applied: Site) -> None:
    site = shared_applied
    a, b = site.domain("a.test"), site.domain("b.test")
    procs = [a.popen("apply", "-auto-approve"), b.popen("apply", "-auto-approve")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    inv = inventory(site)
    assert set(inv["domains"]) == {"a.test", "b.test"}
    assert inv["volumes"] == {"base-debian-12-0123456789ab.qcow2",
                              "a.test-disk-0123456789ab.qcow2", "a.test-seed-0123456789ab.iso",
                              "b.test-disk-0123456789ab.qcow2", "b.test-seed-0123456789ab.iso"}
    assert a.plan_exitcode()[0] == 0 and b.plan_exitcode()[0] == 0
    # And concurrent destroys leave the shared objects alone.
    procs = [a.popen("destroy", "-auto-approve"), b.popen("destroy", "-auto-approve")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert inventory(site) == {"domains": {}, "pools": {"provisioner"},
                               "volumes": {"base-debian-12-0123456789ab.qcow2"}}


def test_provider_leaves_no_socket_directory(site: Site, tmp_path_factory) -> None:
    """Each provider start makes a 0700 socket directory; every run must remove it, even when gRPC has
    already unlinked the socket (1,342 empty tf-libvirt-* directories piled up in /tmp before)."""
    tmpdir = tmp_path_factory.mktemp("provider-tmp")
    ws = site.shared()
    ws.env["TMPDIR"] = str(tmpdir)
    ws.apply()
    assert ws.plan_exitcode()[0] == 0
    assert list(tmpdir.iterdir()) == []
