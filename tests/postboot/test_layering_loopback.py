"""Layer jobs against the real loopback guest (loopback.py), acting as example.test's machine.

MOCK: the guest's `cloud-init` is the stand-in of loopback.py, the only mock: for a layer
job's `cloud-init --file F single --name M --frequency always` it records what it was asked
(~/.cloud-init-single) and the file (~/.cloud-init-file), and creates no user. The loopback
login user is not root and this host has no sudo, so the job's root commands run as that
user (provisioner/postboot/layer_commands.py); the layered domains here therefore have no
`ips` (adding addresses needs real root: tests/test_layering.py runs that step in a
network namespace).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import fields
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from loopback import (  # noqa: F401
    DOMAIN,
    Env,
    atd,
    conf_set,
    domain_keys,
    env,
    guest_user,
    needs_root,
    session_dir,
    sshd,
)

from provisioner import layering
from provisioner.cli import main
from provisioner.pipeline import Context
from provisioner.postboot.queue import queue_for
from provisioner.postboot.schedule import schedule_postboot
from provisioner.spec.load import load_domain
from provisioner.status import domain_status

LAYERED = "layer.test"
LAYER_MAKEFILE = ("all:\n\tinstall -d $(HOME)/www/layer.test\n"
                  "\tprintf 'layer.test site installed\\n' > $(HOME)/www/layer.test/.provisioned\n")


@pytest.fixture
def layer_env(env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    """`env` plus layer.test (depends_on example.test, no ips, its own site archive), fast settings
    for the jobs `provision` queues, and an operator HOME without known_hosts."""
    if shutil.which("sudo"):
        pytest.skip("the loopback user has no sudo rights: on a host with sudo the layer job would use it")
    for name in (".cloud-init-single", ".cloud-init-file"):
        (env.user.home / name).unlink(missing_ok=True)
    directory = env.domains / LAYERED
    shutil.copytree(env.domains / DOMAIN, directory)
    (directory / "data.tar.gz").unlink()
    with tarfile.open(directory / "data.tar.gz", "w:gz") as tar:
        data = LAYER_MAKEFILE.encode()
        info = tarfile.TarInfo("Makefile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    conf_set(directory, depends_on=DOMAIN, ips="", packages="tree")
    conf_set(env.domains / DOMAIN, ssh_address=env.address)
    for field in fields(env.settings):
        monkeypatch.setenv(f"PROVISION_POSTBOOT_{field.name.upper()}", str(getattr(env.settings, field.name)))
    monkeypatch.setenv("HOME", str(tmp_path / "operator"))
    yield env


def cli(env: Env, *args: str) -> int:
    return main(["--root", str(env.layout.root), "--domains", str(env.domains), "-q", *args])


def test_depends_on_layers_onto_the_machine_of_the_other(layer_env: Env) -> None:
    env = layer_env
    owner = load_domain(DOMAIN, env.domains, env.layout)
    # example.test's own job on its machine (the loopback guest); its VM's apply is tested elsewhere.
    assert schedule_postboot(env.layout, owner, env.workspace, wait=True, progress=env.progress,
                             address=owner.ssh_address, settings=env.settings).state == "done"
    ctx = Context(env.layout, env.domains, progress=env.progress)
    spec = load_domain(LAYERED, env.domains, env.layout)
    applied = layering.layer(spec, layering.dependency_machine(spec, owner, ctx), ctx)
    assert applied.job is not None
    job = applied.job
    assert (job.kind, job.state, job.step, job.exit_code) == ("layer", "done", "fetch", 0)
    home = env.user.home
    assert (home / "www/example.test/.provisioned").read_text().startswith("example.test site installed")
    assert (home / "www/layer.test/.provisioned").read_text() == "layer.test site installed\n"
    assert (home / ".cloud-init-single").read_text().splitlines() == [
        "single --name users_groups --frequency always",
        "single --name package_update_upgrade_install --frequency always"]
    config = yaml.safe_load((home / ".cloud-init-file").read_text())
    login = (env.layout.domain_dir(LAYERED) / "keys" / "id_ed25519.pub").read_text().strip()
    admin = next(u for u in config["users"] if u["name"] == env.user.name)
    assert login in admin["ssh_authorized_keys"] and config["packages"] == ["at", "make", "tree"]
    assert [d.name.startswith(LAYERED) for d in (home / ".provisioner/jobs").iterdir()].count(True) == 1
    log = Path(job.log_path or "").read_text()
    assert "step users" in log and "step network" not in log and "DONE: make succeeded" in log
    [status] = domain_status(env.layout, LAYERED)
    assert (status.state, status.resources) == ("layered on example.test", 0)
    assert not (env.layout.domain_dir(LAYERED) / "terraform").exists()

    again = layering.layer(spec, layering.dependency_machine(spec, owner, ctx), ctx)
    assert (again.outcome, again.job) == ("unchanged", None)

    owner_files = sorted(p.relative_to(env.workspace) for p in env.workspace.rglob("*"))
    assert cli(env, "destroy", LAYERED, "--yes") == 0
    assert not env.layout.domain_dir(LAYERED).exists()
    assert sorted(p.relative_to(env.workspace) for p in env.workspace.rglob("*")) == owner_files
    assert (home / "www/example.test/.provisioned").exists()


@pytest.mark.parametrize("source", ["host-key file", "known_hosts"])
def test_existing_machine_with_a_known_host_key(layer_env: Env, domain_keys: Path, tmp_path: Path, source: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    env = layer_env
    conf_set(env.domains / DOMAIN, ips="")
    host_key = domain_keys / "ssh_host_ed25519_key.pub"
    if source == "known_hosts":
        known = tmp_path / "operator" / ".ssh" / "known_hosts"
        known.parent.mkdir(parents=True)
        port = env.address.rsplit(":", 1)[1]
        known.write_text(f"[127.0.0.1]:{port} {host_key.read_text()}")
        extra: tuple[str, ...] = ()
    else:
        extra = ("--host-key", str(host_key))
    assert cli(env, DOMAIN, "--existing", f"{env.user.name}@{env.address}", *extra) == 0
    assert f"{DOMAIN}: layered on {env.address} (no VM of its own)" in capsys.readouterr().out
    [job] = queue_for(env.layout, env.settings).list(domain=DOMAIN)
    assert (job.kind, job.state, job.params.existing) == ("layer", "done", True)
    assert (env.user.home / "www/example.test/.provisioned").exists()
    assert json.loads((env.workspace / "layer.json").read_text())["on"] == env.address


def test_existing_machine_with_an_unknown_host_key_is_refused(layer_env: Env,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    env = layer_env
    assert cli(env, DOMAIN, "--existing", f"{env.user.name}@{env.address}") == 1
    err = capsys.readouterr().err
    port = env.address.rsplit(":", 1)[1]
    assert "host key is unknown" in err and f"ssh-keyscan -p {port} 127.0.0.1 >> " in err and "--host-key" in err
    assert not (env.user.home / ".provisioner").exists()
    assert not (env.user.home / ".cloud-init-single").exists()
    assert queue_for(env.layout, env.settings).list() == []


def test_existing_machine_refusing_the_key_says_where_the_key_is(layer_env: Env, domain_keys: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    env = layer_env
    conf = env.domains / LAYERED / "provision.conf"
    conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True)
                            if not line.startswith("depends_on")))
    host_key = domain_keys / "ssh_host_ed25519_key.pub"
    # layer.test's own key is not authorized on the loopback guest.
    assert cli(env, LAYERED, "--existing", f"{env.user.name}@{env.address}", "--host-key", str(host_key)) == 1
    err = capsys.readouterr().err
    public = env.layout.domain_dir(LAYERED) / "keys" / "id_ed25519.pub"
    assert f"append {public} to ~{env.user.name}/.ssh/authorized_keys" in err
    assert public.read_text().strip() in err
