"""Terraform state on Terraform's own `pg` backend (provisioner.terraform.backend), against a real PostgreSQL
(tests/pg.py) and the real terraform binary.

The workspace-level tests use Terraform's built-in `terraform_data` resource (no provider to start); the
pipeline tests provision example.test on the simulator, with both roots on one simulated node file.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import EXAMPLE
from test_apply import add_domain, hypervisor, provision, set_conf
from provisioner import pipeline
from provisioner.errors import ProvisionError
from provisioner.layering import Machine, layer
from provisioner.layout import Layout, restrict_umask
from provisioner.progress import Progress
from provisioner.provider.simulator import open_readonly
from provisioner.spec.load import load_domain
from provisioner.render.plan import PROVIDER_SOURCE, PROVIDER_VERSION
from provisioner.terraform.backend import MAX_SCHEMA, PgState, StateDatabase, conn_str, schema_name
from provisioner.terraform.providers import EMBEDDED, cli_config
from provisioner.terraform.workspace import MIGRATING_STATE, Workspace


def test_schema_names_are_identifiers_named_by_what_the_workspace_manages() -> None:
    assert schema_name("domain", "web1") == "tf_domain_web1"
    assert schema_name("shared", "simulator_0a1b2c3d") == "tf_shared_simulator_0a1b2c3d"
    # Changed to fit (other characters, upper case, length): a digest of the exact name keeps them apart.
    names = ["a-b", "a_b", "a.b", "A_B", "x" * 200, "x" * 201]
    schemas = [schema_name("volume", n) for n in names]
    assert schemas[1] == "tf_volume_a_b" and len(set(schemas)) == len(names)
    for schema in schemas:
        assert len(schema) <= MAX_SCHEMA and schema.startswith("tf_volume_")
        assert all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in schema), schema
    with pytest.raises(ValueError, match="unknown workspace kind 'pool'"):
        schema_name("pool", "x")


def test_conn_str_is_lib_pq_form_with_sslmode_disable_on_a_socket() -> None:
    assert conn_str("postgresql://pg@/db?host=/run/pg") == "postgres://pg@/db?host=/run/pg&sslmode=disable"
    assert conn_str("postgresql:///db") == "postgres:///db?sslmode=disable"
    # TCP, or an sslmode already chosen: left as the operator wrote it.
    assert conn_str("postgresql://u:p@db.example:5432/db") == "postgres://u:p@db.example:5432/db"
    assert conn_str("postgresql:///db?host=/s&sslmode=require") == "postgres:///db?host=/s&sslmode=require"
    assert "secret" not in repr(StateDatabase.from_uri("postgresql://u:secret@/db"))
    assert "secret" not in repr(StateDatabase.from_uri("postgresql://u:secret@/db").workspace("domain", "x"))


def _schemas(uri: str) -> set[str]:
    import psycopg  # only with a PostgreSQL (the postgres_uri fixture skips without the driver)

    with psycopg.connect(uri) as conn:
        return {row[0] for row in conn.execute("SELECT schema_name FROM information_schema.schemata")}


def _data_workspace(directory: Path, state: PgState | None, value: str, extra: str = "") -> Workspace:
    """A workspace of one terraform_data resource; the libvirt provider is required (as in every plan the
    engine writes) but never started."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf").write_text(
        f'terraform {{\n  required_providers {{\n    libvirt = {{ source = "{PROVIDER_SOURCE}", '
        f'version = "{PROVIDER_VERSION}" }}\n  }}\n}}\n\n'
        f'resource "terraform_data" "a" {{\n  input = "{value}"\n{extra}}}\n')
    cli = cli_config(directory.parent / "terraform", EMBEDDED)
    return Workspace(directory, cli, directory / "terraform.log", state)


def test_a_local_state_moves_into_postgres_on_the_next_init(tmp_path: Path, postgres_uri: str) -> None:
    restrict_umask()  # as every entry point does
    local = _data_workspace(tmp_path / "ws", None, "one")
    local.init()
    local.apply()
    made = local.managed()["terraform_data.a"]["id"]

    state = StateDatabase.from_uri(postgres_uri).workspace("domain", "moved")
    moved = Workspace(local.directory, local.cli_config, tmp_path / "ws" / "terraform.log", state)
    assert moved.init()
    assert not local.state_file.exists() and not (local.directory / MIGRATING_STATE).exists()
    assert set(moved.managed()) == {"terraform_data.a"} and moved.managed()["terraform_data.a"]["id"] == made
    assert not moved.plan().changes  # the same resource, not a new one
    assert "tf_domain_moved" in _schemas(postgres_uri)
    # Only the schema is written down; the connection string reaches Terraform through the environment.
    database = urlsplit(postgres_uri).path.strip("/")
    assert database.startswith("t_")
    assert [p for p in tmp_path.rglob("*") if p.is_file() and database.encode() in p.read_bytes()] == []
    for path in tmp_path.rglob("*"):
        if path.is_file() and "mirror" not in path.parts and "providers" not in path.parts:
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_local_state_is_not_copied_over_a_schema_that_holds_the_workspace(tmp_path: Path,
                                                                            postgres_uri: str) -> None:
    restrict_umask()
    state = StateDatabase.from_uri(postgres_uri).workspace("domain", "taken")
    there = _data_workspace(tmp_path / "there", state, "there")
    there.init()
    there.apply()
    here = _data_workspace(tmp_path / "here", None, "here")
    here.init()
    here.apply()
    switched = Workspace(here.directory, here.cli_config, tmp_path / "here" / "terraform.log", state)
    with pytest.raises(ProvisionError, match="both hold this workspace: nothing was copied") as caught:
        switched.init()
    assert "DROP SCHEMA tf_domain_taken CASCADE" in str(caught.value)
    # Both kept: the schema still holds the other root's resource, the local state waits beside it.
    assert there.managed()["terraform_data.a"]["input"]["value"] == "there"
    assert Workspace.read_managed(here.directory / MIGRATING_STATE)["terraform_data.a"]["input"]["value"] == "here"
    with pytest.raises(ProvisionError, match="both hold this workspace"):
        switched.init()  # and again on the next run, until someone chooses


def test_a_workspace_in_postgres_refuses_to_fall_back_to_a_local_state(tmp_path: Path, postgres_uri: str) -> None:
    state = StateDatabase.from_uri(postgres_uri).workspace("network", "net-1")
    shared = _data_workspace(tmp_path / "ws", state, "one")
    shared.init()
    shared.apply()
    local = Workspace(shared.directory, shared.cli_config, tmp_path / "ws" / "terraform.log", None)
    with pytest.raises(ProvisionError, match=r"keeps its Terraform state in PostgreSQL \(backend.tf\), but no "
                                             r"database is configured: set `database:`"):
        local.init()
    # Nor does it read as empty (a destroy would then drop the workspace and leave its resources behind).
    with pytest.raises(ProvisionError, match="no database is configured"):
        local.managed()
    assert set(shared.managed()) == {"terraform_data.a"}


def _apply_slowly(directory: str, uri: str, marks: str) -> None:
    """One process applying the shared workspace from its own directory; its apply appends start/end marks."""
    restrict_umask()
    state = StateDatabase.from_uri(uri).workspace("domain", "contended")
    name = Path(directory).name
    # The pause widens the window in which an unlocked second apply would interleave with the first.
    command = f"echo start {name} >> {marks}; sleep 2; echo end {name} >> {marks}"
    workspace = _data_workspace(Path(directory), state, name,
                                # Replaced on each apply (a new input), so the creation-time provisioner runs each time.
                                f'  triggers_replace = "{name}"\n'
                                f'  provisioner "local-exec" {{\n    command = "{command}"\n  }}\n')
    workspace.init()
    workspace.apply()


def test_two_applies_of_one_workspace_from_two_roots_take_turns(tmp_path: Path, postgres_uri: str) -> None:
    marks = tmp_path / "marks"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_apply_slowly, args=(str(tmp_path / name), postgres_uri, str(marks)))
                 for name in ("one", "two")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0], (tmp_path / "one" / "terraform.log").read_text()
    lines = marks.read_text().split()
    # Terraform's lock on the state (a PostgreSQL advisory lock) serialised them: one apply, then the other.
    first, second = lines[1], lines[5]
    assert lines == ["start", first, "end", first, "start", second, "end", second] and first != second, lines
    pulled = json.loads(_data_workspace(tmp_path / "one", StateDatabase.from_uri(postgres_uri).workspace(
        "domain", "contended"), "unused").runner.run("state pull").stdout)
    assert len(pulled["resources"]) == 1 and len(pulled["resources"][0]["instances"]) == 1
    assert pulled["resources"][0]["instances"][0]["attributes"]["input"]["value"] == second


def _root_context(root: Path, domains: Path, node: Path, uri: str) -> pipeline.Context:
    return pipeline.Context(Layout(root), domains, f"test://{node}", progress=Progress(quiet=True),
                            state_db=StateDatabase.from_uri(uri))


def _domains(node: Path) -> list[str]:
    conn = open_readonly(f"test://{node}")
    try:
        return sorted(d.name() for d in conn.listAllDomains())
    finally:
        conn.close()


def test_a_domain_built_through_one_root_is_destroyed_through_another(tmp_path: Path, postgres_uri: str) -> None:
    restrict_umask()
    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLE, domains / "example.test")
    node = tmp_path / "hypervisor" / "node.xml"
    one = _root_context(tmp_path / "one", domains, node, postgres_uri)
    other = _root_context(tmp_path / "other", domains, node, postgres_uri)
    assert pipeline.provision("example.test", one, wait=False).outcome == "created"
    assert _domains(node) == ["example.test"]
    # No state file in any workspace (.terraform/terraform.tfstate only records which backend init chose).
    assert [p for p in (tmp_path / "one").rglob("terraform.tfstate*") if ".terraform" not in p.parts] == []
    assert {"tf_domain_example_test_" in s for s in _schemas(postgres_uri)} == {True, False}

    pipeline.destroy_elsewhere_built("example.test", f"test://{node}", other)
    assert _domains(node) == []
    assert not (tmp_path / "other" / "domains" / "example.test").exists()
    # Nothing left for the first root's workspace either: its state is the same one.
    assert pipeline.workspace_for(tmp_path / "one" / "domains" / "example.test", one).managed() == {}


def test_destroying_a_domain_elsewhere_needs_the_shared_database(tmp_path: Path) -> None:
    ctx = pipeline.Context(Layout(tmp_path / "root"), tmp_path, progress=Progress(quiet=True))
    with pytest.raises(ProvisionError, match="its Terraform state is not in a shared database"):
        pipeline.destroy_elsewhere_built("web1", "test:///default", ctx)


def test_roots_share_a_domain_schema_but_each_keeps_its_own_shared_workspace(tmp_path: Path) -> None:
    database = StateDatabase.from_uri("postgresql:///db")

    def schema(root: Path, *parts: str) -> str:
        ctx = pipeline.Context(Layout(root), tmp_path, progress=Progress(quiet=True), state_db=database)
        state = pipeline.workspace_for(root.joinpath(*parts), ctx).state
        assert state is not None
        return state.schema

    one, other = tmp_path / "one", tmp_path / "other"
    assert schema(one, "domains", "web1") == schema(other, "domains", "web1") == "tf_domain_web1"
    assert schema(one, "volumes", "vol-1") == schema(other, "volumes", "vol-1")
    assert schema(one, "networks", "net-1") == schema(other, "networks", "net-1") == schema_name("network", "net-1")
    mine = schema(one, "shared", "simulator")
    assert mine.startswith("tf_shared_simulator_") and mine == schema(one, "shared", "simulator")
    assert schema(other, "shared", "simulator") != mine
    # Named by the root's own id, not its path: a root moved keeps it, a new root at the old path does not.
    one.rename(tmp_path / "moved")
    assert schema(tmp_path / "moved", "shared", "simulator") == mine
    assert schema(one, "shared", "simulator") != mine
    with pytest.raises(ProvisionError, match="not a workspace under"):
        schema(one, "elsewhere", "x")


def test_the_provision_command_refuses_a_domain_whose_state_is_in_postgres(
        tmp_path: Path, postgres_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    restrict_umask()
    root, domains = tmp_path / "root", tmp_path / "domains"
    add_domain(domains, "example.test")
    api = pipeline.Context(Layout(root), domains, progress=Progress(quiet=True),
                           state_db=StateDatabase.from_uri(postgres_uri))
    assert pipeline.provision("example.test", api, wait=False).outcome == "created"
    # `provision` has no database: neither a destroy (which would find no state and drop the workspace)…
    assert provision(root, domains, "destroy", "--yes", "example.test") != 0
    assert "no database is configured: set `database:`" in capsys.readouterr().err
    assert (Layout(root).domain_dir("example.test") / "terraform" / "main.tf").is_file()
    assert "example.test" in hypervisor(root)["domains"]
    # …nor layering it onto another machine as though it had no VM.
    add_domain(domains, "base.test")
    set_conf(domains / "example.test", "depends_on", "base.test")
    set_conf(domains / "example.test", "ips", "192.0.2.20/24")
    spec = load_domain("example.test", domains, Layout(root))
    cli = pipeline.Context(Layout(root), domains, progress=Progress(quiet=True))
    machine = Machine(label="base.test", owner="base.test", user="root", identity=tmp_path / "id", host_keys=())
    with pytest.raises(ProvisionError, match="example.test has a VM of its own"):
        layer(spec, machine, cli, wait=False)
    assert "example.test" in hypervisor(root)["domains"]
