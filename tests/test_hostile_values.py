"""Values carrying quotes, $, ${…}, %{…}, backslashes or non-ASCII reach every
artifact literally, never interpreted (checked with YAML and real Terraform)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioner.cli import main
from provisioner.render.hcl import hcl

HOSTILE = [
    'quote " and \' here',
    "dollar $HOME and ${path.module} and $${x}",
    "percent %{ if true }yes%{ endif } and %%{x}",
    "back\\slash \\n \\\" end\\",
    "non-ASCII: é ü 日本 🚀",
    "new\nline and\ttab",
    "}}{{ jinja {% raw %} #",
]


@pytest.fixture(scope="module")
def terraform() -> str:
    path = shutil.which("terraform")
    assert path, "terraform is not on PATH: run `make test`"
    return path


def terraform_eval(terraform: str, workdir: Path, expressions: dict[str, str]) -> dict[str, object]:
    """Evaluate HCL expressions with the real Terraform (no provider needed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text("".join(
        f'output "{name}" {{\n  value = {expr}\n}}\n' for name, expr in expressions.items()))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "TF_CLI_CONFIG_FILE": "/dev/null"}
    for command in (["init", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
        subprocess.run([terraform, *command], cwd=workdir, env=env, check=True, capture_output=True)
    done = subprocess.run([terraform, "output", "-json"], cwd=workdir, env=env, check=True,
                          capture_output=True, text=True)
    return {name: value["value"] for name, value in json.loads(done.stdout).items()}


def test_hcl_strings_round_trip_through_terraform(tmp_path: Path, terraform: str) -> None:
    values = terraform_eval(terraform, tmp_path, {f"v{i}": hcl(text) for i, text in enumerate(HOSTILE)})
    assert [values[f"v{i}"] for i in range(len(HOSTILE))] == HOSTILE


def test_hostile_values_reach_cloud_init_and_plan_literally(tmp_path: Path, domains: Path, terraform: str) -> None:
    directory = domains / "example.test"
    gecos = HOSTILE[0] + HOSTILE[1] + HOSTILE[2] + HOSTILE[4]
    (directory / "users.yaml").write_text(yaml.safe_dump({"users": [{"name": "bob", "gecos": gecos}]}))
    (directory / "vmlinuz").write_bytes(b"k")
    cmdline = "console=ttyS0 x=\"${a}\" y=%{b} \\ é $(reboot)"
    conf = directory / "provision.conf"
    conf.write_text(conf.read_text() + f"kernel = vmlinuz\ncmdline = '{cmdline}'\n")
    odd_root = tmp_path / "root with ${x} and %{y} é"
    assert main(["render", "--root", str(odd_root), "--domains", str(domains), "example.test"]) == 0
    workspace = odd_root / "domains" / "example.test"
    user_data = yaml.safe_load((workspace / "cloud-init/user-data").read_text())
    assert user_data["users"][0]["gecos"] == gecos
    # Evaluate the plan's own expressions for the hostile values.
    text = (workspace / "terraform/main.tf").read_text()
    expressions = {
        "cmdline": re.search(r"^\s*cmdline\s*=\s*(.+)$", text, re.M).group(1),
        "seed": re.search(r"^\s*create = \{ content = \{ url = (.+) \} \}$", text, re.M).group(1),
    }
    values = terraform_eval(terraform, tmp_path / "eval", expressions)
    assert values == {"cmdline": cmdline, "seed": str(workspace / "seed.iso")}
