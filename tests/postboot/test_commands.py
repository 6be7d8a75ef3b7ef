"""`provision jobs`, `jobs show`, `jobs cancel` and `worker`, through argparse as cli.py wires them."""

from __future__ import annotations

import argparse
import json
import types
from dataclasses import fields

import pytest

from loopback import Env, atd, domain_keys, env, guest_user, needs_root, session_dir, sshd  # noqa: F401
from provisioner.postboot import commands
from provisioner.postboot.errors import JobStateError
from provisioner.postboot.schedule import schedule_postboot
from provisioner.progress import Progress


def cli(env: Env, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser(prog="provision")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)

    def context(args: argparse.Namespace) -> types.SimpleNamespace:
        return types.SimpleNamespace(layout=env.layout, progress=Progress(quiet=getattr(args, "quiet", False)))

    commands.add_parsers(sub, common, context)
    args = parser.parse_args(list(argv))
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_jobs_list_show_cancel_and_worker(env: Env, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands read their settings from the environment, as `provision worker` does.
    for field in fields(env.settings):
        monkeypatch.setenv(f"PROVISION_POSTBOOT_{field.name.upper()}", str(getattr(env.settings, field.name)))
    for _ in range(2):
        schedule_postboot(env.layout, env.spec, env.workspace, wait=False, progress=env.progress,
                          address=env.address, settings=env.settings)
    listing = cli(env, capsys, "jobs")
    assert listing.splitlines()[0].split() == ["ID", "STATE", "STEP", "DOMAIN", "QUEUED", "EXIT", "MESSAGE"]
    assert [line.split()[:2] for line in listing.splitlines()[1:]] == [["1", "queued"], ["2", "queued"]]
    assert cli(env, capsys, "jobs", "cancel", "2") == "job 2 (example.test): cancelled\n"
    with pytest.raises(JobStateError):
        cli(env, capsys, "jobs", "cancel", "2")
    assert "ran 1 job(s)" in cli(env, capsys, "worker", "--drain")
    shown = cli(env, capsys, "jobs", "show", "1")
    assert "state:    done (step fetch)" in shown and "exit:     0" in shown
    assert "install -m 0644 index.html" in shown
    data = json.loads(cli(env, capsys, "jobs", "--json", "--domain", "example.test"))
    assert [(j["id"], j["state"]) for j in data] == [(1, "done"), (2, "cancelled")]
