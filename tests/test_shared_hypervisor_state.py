"""The shared workspace of a hypervisor several roots reach keeps one Terraform state in PostgreSQL for all of them
(provisioner/shared.py, pipeline._workspace_id): against a real PostgreSQL (tests/pg.py), the real terraform and
the simulator, both roots on one simulated node file outside either root (as a remote host is)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import EXAMPLE
from test_terraform_pg_state import _domains, _root_context

from provisioner import pipeline
from provisioner.layout import restrict_umask
from provisioner.shared import URI_FILE, shared_dir


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
