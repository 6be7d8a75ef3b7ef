"""What `provision DOMAIN` imports: what converging a domain needs, not the API's or the other commands' modules,
and for a no-op re-apply not even the renderers.

Start-up is most of a no-op re-apply (issue #14, docs/scale-out.md "Figures"); this guards it without timing
anything: a real run's sys.modules is checked in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from provisioner import cli

# Modules only other commands use: the API's (its accounts, config, falcon, waitress), the image,
# snapshot, backup, post-boot job and service commands, and the URL download path (http.client, ssl).
NOT_FOR_APPLY = ("api", "falcon", "waitress", "http.client", "ssl", "provisioner.images.commands",
                 "provisioner.postboot.commands", "provisioner.backups", "provisioner.snapshots",
                 "provisioner.service")

# What renders (the plans, the seed ISO, the setup script): a no-op re-apply needs none of it.
RENDERERS = ("jinja2", "pycdlib", "provisioner.templates", "provisioner.render.domain", "provisioner.postboot.job")

RUN_AND_LIST = """
import json, sys
from provisioner.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_cli(*argv: str) -> tuple[int, list[str], str]:
    """Run provisioner.cli.main(argv) in a fresh interpreter: (exit code, modules imported, output)."""
    done = subprocess.run([sys.executable, "-P", "-c", RUN_AND_LIST, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    *output, last = done.stdout.splitlines()
    result = json.loads(last)
    return result["code"], result["modules"], "\n".join(output)


def imported(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """The modules in `modules` that are one of `names` or inside one of them."""
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_provision_domain_imports_none_of_the_other_commands_modules(root: Path, domains: Path) -> None:
    common = ("--root", str(root), "--domains", str(domains), "-q")
    for expected in ("created", "unchanged"):  # a fresh provision, then a no-op re-apply
        code, modules, output = run_cli(*common, "example.test")
        assert code == 0 and f"example.test: {expected}" in output
        assert "provisioner.pipeline" in modules  # the run did go through the engine
        assert imported(modules, NOT_FOR_APPLY) == []
    # The no-op's render still holds (provisioner.render.record): nothing is rendered, no renderer imported.
    assert imported(modules, RENDERERS) == []


def test_import_of_the_cli_alone_imports_no_command_group() -> None:
    code = "import json, sys, provisioner.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert imported(json.loads(done.stdout), NOT_FOR_APPLY) == []


@pytest.mark.parametrize(("module", "names"), [
    ("provisioner.postboot.commands", ("jobs", "worker")),
    ("provisioner.backups.commands", ("backup", "backups")),
    ("provisioner.snapshots.commands", ("snapshot", "snapshots", "restore", "snapshot-delete")),
    ("api.cli", ("serve", "users", "openrc", "clouds-yaml")),
    ("provisioner.service.commands", ("install-service", "uninstall-service")),
])
def test_the_cli_table_names_each_modules_commands(module: str, names: tuple[str, ...]) -> None:
    # The table in provisioner/cli.py is what `provision NAME` is looked up in without importing the module.
    assert importlib.import_module(module).COMMAND_NAMES == names
    assert names in cli._GROUPS


def test_every_command_parses_with_only_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    everything = {name for names in cli._GROUPS for name in names} | set(cli.COMMANDS)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    listing = capsys.readouterr().out
    assert all(f"    {name} " in listing for name in everything), listing
    for name in everything:
        subparsers = next(a for a in cli.build_parser(name)._actions if a.dest == "command")
        assert name in subparsers.choices
        group = next((names for names in cli._GROUPS if name in names), ())
        assert set(subparsers.choices) == set(cli.COMMANDS) | set(group)


def test_a_word_that_is_no_command_is_a_domain() -> None:
    assert cli._default_command(["--root", "/r", "openrc"]) == ["--root", "/r", "openrc"]
    assert cli._default_command(["--root", "/r", "web.test", "-y"]) == ["apply", "--root", "/r", "web.test", "-y"]
    assert cli._default_command(["--root", "/r", "--help"]) == ["--root", "/r", "--help"]


@pytest.mark.parametrize("with_thread", [False, True])
def test_exit_now_flushes_its_output_and_waits_for_a_running_thread(with_thread: bool) -> None:
    # provisioner.cli.exit_now skips the interpreter's teardown only when no other thread runs.
    code = ("import sys, threading, time\n"
            "from provisioner.cli import exit_now\n"
            "def late():\n"
            "    time.sleep(0.3); print('thread done', flush=True)\n"
            f"if {with_thread}:\n"
            "    threading.Thread(target=late).start()\n"
            "print('buffered, not flushed', end='')\n"
            "exit_now(3)\n")
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout.startswith("buffered, not flushed")
    assert ("thread done" in done.stdout) == with_thread
