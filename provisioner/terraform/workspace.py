"""One Terraform working directory with its own state: init, plan, apply, destroy.

The state is the directory's terraform.tfstate, or a PostgreSQL schema
(provisioner.terraform.backend) when the workspace is given a PgState.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.terraform.backend import BACKEND_FILE, CONN_ENV, LOCK_TIMEOUT, PgState
from provisioner.terraform import reattach
from provisioner.terraform.runner import FLAG, Runner, TerraformError, WarmProviderStopped
from provisioner.workspace import write_atomic

PLAN_FILE = "plan.tfplan"
INIT_STAMP = ".terraform/provisioner-init"
LOCAL_STATE = "terraform.tfstate"
# Where a local state is moved while it is copied into PostgreSQL (removed once the copy is checked).
MIGRATING_STATE = "terraform.tfstate.migrating"
_CONCURRENT_CREATE = "duplicate key value violates unique constraint"
_INIT_ATTEMPTS = 4  # the schema, the table, its index: one collision each at most, and one run that succeeds


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
    """A Terraform working directory (`main.tf`) and its state: `terraform.tfstate`, or PostgreSQL (`state`)."""

    def __init__(self, directory: Path, cli_config: Path, log: Path, state: PgState | None = None):
        self.directory = directory
        self.cli_config = cli_config
        self.state = state
        self.runner = Runner(directory, cli_config, log, state.env() if state is not None else None)
        # Two API nodes may apply one workspace at once: the second waits for Terraform's lock on its state.
        self._lock = {"lock_timeout": LOCK_TIMEOUT} if state is not None else {}

    @property
    def state_file(self) -> Path:
        return self.directory / LOCAL_STATE

    def init(self) -> bool:
        """`terraform init` unless already done with this CLI config and backend; True if it ran.

        Put off for a new workspace with local state while the warm provider
        is up: the runner runs it before the first command without that
        provider (there may be none). Switching a workspace to PostgreSQL copies its local state there
        (_migrate); switching back is refused (_refuse_local).
        """
        stamp = self.directory / INIT_STAMP
        if self.state is None and not stamp.parent.exists() and self.runner.attachable():
            # A new workspace with local state, and the warm provider up: Terraform needs no init to use a
            # reattached provider (nor a lock file for it); it runs before a command without it, if one comes.
            self.runner.before_cold = self._init_now
            return False
        return self._init_now()

    def _init_now(self) -> bool:
        stamp = self.directory / INIT_STAMP
        config = self.cli_config.read_bytes()
        backend = self.state.backend_tf() if self.state is not None else None
        wanted = hashlib.sha256(config if backend is None else config + b"\0" + backend.encode()).hexdigest()
        if stamp.exists() and stamp.read_text() == wanted and (self.directory / ".terraform.lock.hcl").exists():
            return False
        if backend is None:
            self._refuse_local()
        else:
            write_atomic(self.directory / BACKEND_FILE, backend.encode())
        # A provider source switch (embedded <-> upstream) changes the package hashes.
        (self.directory / ".terraform.lock.hcl").unlink(missing_ok=True)
        shutil.rmtree(self.directory / ".terraform", ignore_errors=True)
        local = self.state_file
        moved = self.directory / MIGRATING_STATE
        if backend is not None and local.exists():
            # Terraform would ask whether to copy it (and cannot without a terminal): the copy is ours.
            local.replace(moved)
            (self.directory / f"{LOCAL_STATE}.backup").unlink(missing_ok=True)
        self._run_init()
        if self.state is not None and moved.exists():
            self._migrate(moved, self.state)
        # Terraform chmods its lock file 0644 whatever the umask; every file under the root is 0600.
        (self.directory / ".terraform.lock.hcl").chmod(0o600)
        stamp.write_text(wanted)
        return True

    def take_over(self, previous: PgState) -> None:
        """If this directory was initialised on the schema `previous`, move its state to this workspace's next init.

        For a workspace whose schema was renamed (a shared workspace that was
        its root's own before its hypervisor's was shared): that state is
        pulled into the local state file, which init() then pushes into the
        new schema (or refuses to, naming both, if that already holds
        resources). The old schema keeps its copy.
        """
        backend = self.directory / BACKEND_FILE
        if self.state is None or previous.schema == self.state.schema or not backend.exists() \
                or backend.read_text() != previous.backend_tf():
            return
        old = Workspace(self.directory, self.cli_config, self.runner.log, previous)
        text = old._pull_text()
        if self.parse_managed(text):
            write_atomic(self.state_file, text.encode())
        backend.unlink()  # init() writes this workspace's, and runs again

    def _run_init(self) -> None:
        """`terraform init`; with PostgreSQL, again if another node's init was creating the schema meanwhile.

        The pg backend creates its schema, then its table and index, each with
        CREATE … IF NOT EXISTS, which PostgreSQL does not make safe against a
        concurrent creation: the loser fails on a unique index of the catalog,
        once per object the other is creating; a later run finds them made.
        """
        for attempt in range(_INIT_ATTEMPTS):
            try:
                self.runner.run("init", input=False)
                return
            except TerraformError as exc:
                if self.state is None or _CONCURRENT_CREATE not in exc.result.stderr \
                        or attempt == _INIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def _refuse_local(self) -> None:
        """ProvisionError if this workspace keeps its state in PostgreSQL but no database is configured."""
        if (self.directory / BACKEND_FILE).exists():
            raise ProvisionError(
                f"{self.directory}: this workspace keeps its Terraform state in PostgreSQL ({BACKEND_FILE}), but "
                "no database is configured: set `database:` in api/config.yaml again, or copy the state back "
                f"first (cd {self.directory} && {CONN_ENV}=<the database's lib/pq URI> terraform state pull > "
                f"{LOCAL_STATE}) and then remove {BACKEND_FILE}")

    def _migrate(self, moved: Path, state: PgState) -> None:
        """Copy the local state `moved` into the (just initialised) PostgreSQL schema, then remove it.

        A schema that already holds resources (another root applied the same
        workspace) is not overwritten: ProvisionError, both states kept.
        """
        local = self.read_managed(moved)
        if local:
            remote = self._pull()
            if remote:
                raise ProvisionError(
                    f"{self.directory}: its local Terraform state ({moved.name}, {len(local)} resources) and "
                    f"PostgreSQL schema {state.schema} ({len(remote)} resources) both hold this workspace: "
                    f"nothing was copied. Keep one: destroy what the local state holds and remove {moved.name}, "
                    f"or drop the schema (psql: DROP SCHEMA {state.schema} CASCADE) and run again")
            self.runner.run("state push", str(moved), **self._lock)
            if set(self._pull()) != set(local):
                raise ProvisionError(f"{self.directory}: the state copied into PostgreSQL schema "
                                     f"{state.schema} does not read back as {moved.name}: it was kept")
        moved.unlink()

    def managed(self) -> dict[str, dict]:
        """Resources in the state, by address: the state file, or PostgreSQL's copy (`terraform state pull`)."""
        if self.state is None:
            self._refuse_local()  # else a destroy would find nothing here and drop the workspace, state and all
            return self.read_managed(self.state_file)
        if not (self.directory / "main.tf").exists():
            return {}  # never written here: nothing to init with (a node that never built it writes one first)
        self.init()
        return self.parse_managed(self._pull_text())

    def _pull_text(self) -> str:
        return self.runner.run("state pull").stdout

    def _pull(self) -> dict[str, dict]:
        return self.parse_managed(self._pull_text())

    @staticmethod
    def read_managed(state_file: Path) -> dict[str, dict]:
        """Managed resources (address -> attributes) of a state file, without terraform."""
        try:
            text = state_file.read_text()
        except FileNotFoundError:
            return {}
        return Workspace.parse_managed(text)

    @staticmethod
    def parse_managed(text: str) -> dict[str, dict]:
        """Managed resources (address -> attributes) of a state document (JSON text)."""
        if not text.strip():
            return {}  # a kill while Terraform wrote it (or an empty schema); Terraform too reads it as no state
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
                                 ok_codes=(0, 2), **extra, **self._lock)
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
            self.runner.run("apply", input=False, auto_approve=FLAG, **self._lock)
        else:
            try:
                self.runner.run("apply", PLAN_FILE, input=False, again=False, **self._lock)
            except WarmProviderStopped as exc:
                # Terraform applies a saved plan only with the provider that made it: plan again, and go on
                # only with changes already shown (and confirmed): what the stopped apply left undone.
                reattach.warn(f"{exc}: planning again")
                again = self.plan()
                if not set(again.changes) <= set(plan.changes):
                    raise ProvisionError(f"{self.directory}: {exc}, and a new plan has changes the one shown had "
                                         "not: nothing more was applied; run the command again") from None
                if again.changes:
                    self.runner.run("apply", PLAN_FILE, input=False, **self._lock)
        (self.directory / PLAN_FILE).unlink(missing_ok=True)

    def import_resource(self, address: str, identity: str) -> None:
        """Adopt an existing object into the state (after an interrupted apply)."""
        self.runner.run("import", address, identity, input=False, **self._lock)

    def destroy(self) -> None:
        """Destroy everything in this workspace's state."""
        # python-terraform's own destroy() sends -force, which Terraform 1.x rejects.
        self.runner.run("destroy", input=False, auto_approve=FLAG, **self._lock)
