"""The shared workspace of a hypervisor several roots reach keeps one Terraform state in PostgreSQL for all of them
(provisioner/shared.py, pipeline._workspace_id): against a real PostgreSQL (tests/pg.py), the real terraform and
the simulator, both roots on one simulated node file outside either root (as a remote host is)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import EXAMPLE
from test_terraform_pg_state import _domains, _root_context

from provisioner import pipeline
from provisioner.layout import Layout, restrict_umask
from provisioner.shared import URI_FILE, across_roots, base_resource, register, shared_dir
from provisioner.spec.model import ImageRef


def _volumes(node: Path) -> list[str]:
    from provisioner.provider.simulator import open_readonly

    conn = open_readonly(f"test://{node}")
    try:
        return sorted(v for pool in conn.listAllStoragePools() for v in pool.listVolumes())
    finally:
        conn.close()


def test_a_second_root_builds_on_the_pool_the_first_made(tmp_path: Path, postgres_uri: str) -> None:
    restrict_umask()
    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLE, domains / "example.test")
    shutil.copytree(EXAMPLE, domains / "other.test")
    node = tmp_path / "hypervisor" / "node.xml"
    one = _root_context(tmp_path / "one", domains, node, postgres_uri)
    other = _root_context(tmp_path / "other", domains, node, postgres_uri)
    assert pipeline.provision("example.test", one, wait=False).outcome == "created"
    assert pipeline.provision("other.test", other, wait=False).outcome == "created"
    assert _domains(node) == ["example.test", "other.test"]
    # One base volume for both (the same image), each domain's disk backed by it in the first root's pool.
    assert sum(v.startswith("base-") for v in _volumes(node)) == 1
    plan = (tmp_path / "other" / "domains" / "other.test" / "terraform" / "main.tf").read_text()
    assert str(tmp_path / "one" / "pool") in plan and str(tmp_path / "other" / "pool") not in plan
    # Re-applying through the first root changes nothing the second made.
    assert pipeline.provision("example.test", one, wait=False).outcome == "unchanged"
    assert _domains(node) == ["example.test", "other.test"]


def test_a_shared_workspace_kept_in_the_roots_own_schema_moves_to_the_hypervisors(tmp_path: Path,
                                                                                   postgres_uri: str) -> None:
    restrict_umask()
    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLE, domains / "example.test")
    node = tmp_path / "hypervisor" / "node.xml"
    ctx = _root_context(tmp_path / "one", domains, node, postgres_uri)
    directory = shared_dir(f"test://{node}", ctx.layout)
    # As a root made before: the pool applied with its state in the root's own schema (no URI recorded).
    pipeline.render("example.test", ctx)
    (directory / URI_FILE).unlink()
    own = pipeline.workspace_for(directory, ctx)
    assert own.state is not None and own.state.schema.startswith("tf_shared_") and own.state.schema.count("_") > 3
    pipeline.ensure_shared(directory, ctx)
    assert "libvirt_pool.pool" in own.managed()
    # The next build records the URI: the hypervisor's schema takes the state over, so nothing is created again
    # (the embedded provider would adopt the identical pool; upstream's would fail on it).
    assert pipeline.provision("example.test", ctx, wait=False).outcome == "created"
    shared = pipeline.workspace_for(directory, ctx)
    assert shared.state is not None and shared.state.schema != own.state.schema
    assert {"libvirt_pool.pool"} <= set(shared.managed())
    log = (directory / "logs" / "terraform.log").read_text()
    assert log.count("libvirt_pool.pool: Creation complete") == 1, log
    assert _domains(node) == ["example.test"]


def test_the_plan_keeps_the_pool_and_base_volumes_as_the_state_holds_them(tmp_path: Path) -> None:
    # Another root made the pool at its own path and the base volume from its own copy of the image.
    layout = Layout(tmp_path / "root")
    mine = tmp_path / "cirros.qcow2"
    mine.write_bytes(b"QFI\xfb")
    image = ImageRef(source=str(mine), format="qcow2", digest="c" * 64, slug="cirros")
    theirs = "/elsewhere/images/cirros.qcow2"
    state = {"libvirt_pool.pool": {"name": "provisioner", "target": {"path": "/elsewhere/pool"}},
             f"libvirt_volume.{base_resource(image)}": {
                 "name": image.volume_name, "target": {"format": {"type": "qcow2"}},
                 "create": {"content": {"url": theirs}}},
             "libvirt_volume.base_other": {"name": "base-other-0123456789ab.raw", "target": {"format": {"type": "raw"}},
                                           "create": {"content": {"url": "/elsewhere/images/other.raw"}}}}
    registered = register("qemu+ssh://hv1/system", layout, image, lambda _: state)
    assert registered.pool == Path("/elsewhere/pool")
    plan = (registered.directory / "terraform" / "main.tf").read_text()
    assert '"/elsewhere/pool"' in plan and str(layout.pool) not in plan
    # Both base volumes, each from the source the state holds (a changed source would replace the volume).
    assert f'"{theirs}"' in plan and str(mine) not in plan
    assert '"base-other-0123456789ab.raw"' in plan and '"/elsewhere/images/other.raw"' in plan
    # Without a pool in the state, the pool is this root's.
    assert register("qemu+ssh://hv2/system", layout, image, lambda _: {}).pool == layout.pool


def test_only_a_hypervisor_other_roots_reach_has_one_state_for_all(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "root")
    assert across_roots("qemu+ssh://root@hv1/system", layout) and across_roots(f"test://{tmp_path}/hv/node.xml", layout)
    for own in ("qemu:///system", "test:///default", layout.simulator_uri, layout.named_simulator_uri("rack")):
        assert not across_roots(own, layout), own
