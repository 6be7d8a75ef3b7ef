"""One Terraform working directory with its own state: init, plan, apply, destroy."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from provisioner.terraform.runner import FLAG, Runner

PLAN_FILE = "plan.tfplan"
INIT_STAMP = ".terraform/provisioner-init"


@dataclass(frozen=True)
class Change:
    """One resource Terraform would change, with its actions (create, update, delete…)."""

    address: str
    actions: tuple[str, ...]

    @property
    def replaces(self) -> bool:
        return "delete" in self.actions and "create" in self.actions

    @property
    def destroys(self) -> bool:
        return "delete" in self.actions


@dataclass(frozen=True)
class Plan:
    """A saved plan and what it would change (empty: nothing to do)."""

    changes: tuple[Change, ...]
    text: str


class Workspace:
    """A Terraform working directory (`main.tf` + its own `terraform.tfstate`)."""

    def __init__(self, directory: Path, cli_config: Path, log: Path):
        self.directory = directory
        self.cli_config = cli_config
        self.runner = Runner(directory, cli_config, log)

    @property
    def state_file(self) -> Path:
        return self.directory / "terraform.tfstate"

    def init(self) -> bool:
        """`terraform init` unless already done with this CLI config; True if it ran."""
        stamp = self.directory / INIT_STAMP
        wanted = hashlib.sha256(self.cli_config.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == wanted and (self.directory / ".terraform.lock.hcl").exists():
            return False
        # A provider source switch (embedded <-> upstream) changes the package hashes.
        (self.directory / ".terraform.lock.hcl").unlink(missing_ok=True)
        shutil.rmtree(self.directory / ".terraform", ignore_errors=True)
        self.runner.run("init", input=False)
        # Terraform chmods its lock file 0644 whatever the umask; every file under the root is 0600.
        (self.directory / ".terraform.lock.hcl").chmod(0o600)
        stamp.write_text(wanted)
        return True

    def managed(self) -> dict[str, dict]:
        """Resources in the state, by address, read straight from the state file."""
        return self.read_managed(self.state_file)

    @staticmethod
    def read_managed(state_file: Path) -> dict[str, dict]:
        """Managed resources (address -> attributes) of a state file, without terraform."""
        try:
            text = state_file.read_text()
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}  # a kill while Terraform wrote it; Terraform too reads it as no state
        state = json.loads(text)
        out = {}
        for resource in state.get("resources", []):
            if resource.get("mode") == "managed" and resource.get("instances"):
                out[f"{resource['type']}.{resource['name']}"] = resource["instances"][0].get("attributes", {})
        return out

    def plan(self, destroy: bool = False) -> Plan:
        """Save a plan to PLAN_FILE and describe its changes."""
        extra = {"destroy": FLAG} if destroy else {}
        result = self.runner.run("plan", input=False, out=PLAN_FILE, detailed_exitcode=FLAG,
                                 ok_codes=(0, 2), **extra)
        if result.returncode == 0:
            return Plan((), result.stdout)
        shown = json.loads(self.runner.run("show", PLAN_FILE, json=FLAG).stdout)
        changes = tuple(
            Change(rc["address"], tuple(rc["change"]["actions"]))
            for rc in shown.get("resource_changes", [])
            if rc["change"]["actions"] not in (["no-op"], ["read"])
        )
        return Plan(changes, result.stdout)

    def apply(self, plan: Plan | None = None) -> None:
        """Apply a saved plan, or plan-and-apply in one go when `plan` is None."""
        if plan is None:
            self.runner.run("apply", input=False, auto_approve=FLAG)
        else:
            self.runner.run("apply", PLAN_FILE, input=False)
        (self.directory / PLAN_FILE).unlink(missing_ok=True)

    def import_resource(self, address: str, identity: str) -> None:
        """Adopt an existing object into the state (after an interrupted apply)."""
        self.runner.run("import", address, identity, input=False)

    def destroy(self) -> None:
        """Destroy everything in this workspace's state."""
        # python-terraform's own destroy() sends -force, which Terraform 1.x rejects.
        self.runner.run("destroy", input=False, auto_approve=FLAG)
