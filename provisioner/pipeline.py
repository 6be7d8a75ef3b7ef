"""The steps of `provision`, in order: load -> render -> apply (shared, then domain) -> post-boot."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from provisioner.errors import ProvisionError
from provisioner.images.names import is_url
from provisioner.images.store import ImageStore
from provisioner.keys import ensure_keys
from provisioner.layout import Layout, is_simulated
from provisioner.locks import exclusive
from provisioner.postboot.params import BACKUP
from provisioner.postboot.queue import CANCELLED, FAILED, QUEUED, JobRecord, queue_for
from provisioner.postboot.schedule import schedule_postboot
from provisioner.postboot.settings import PostbootSettings
from provisioner.progress import Progress
from provisioner.render import record as render_record
from provisioner.shared import across_roots, recorded_uri, register, shared_lock, render as render_shared
from provisioner.spec.archive import read_archive
from provisioner.spec.load import load_domain
from provisioner.spec.model import DomainSpec
from provisioner.spec.names import validate_domain_name
from provisioner.terraform.backend import StateDatabase, root_id
from provisioner.terraform.providers import EMBEDDED, cli_config
from provisioner.terraform.runner import TerraformError
from provisioner.terraform.workspace import Change, Workspace
from provisioner.workspace import write_artifacts, write_atomic


@dataclass(frozen=True)
class Context:
    """Where inputs are read from and outputs written to, for one command.

    `state_db`: keep every workspace's Terraform state in that PostgreSQL
    database (the API's `database:`) instead of its terraform.tfstate.
    """

    layout: Layout
    domains_dir: Path
    libvirt_uri: str | None = None
    provider: str = EMBEDDED
    progress: Progress = field(default_factory=Progress)
    state_db: StateDatabase | None = None


@dataclass(frozen=True)
class Rendered:
    """What a render produced."""

    spec: DomainSpec
    workspace: Path
    shared_workspace: Path
    changed: list[str]


@dataclass(frozen=True)
class Applied:
    """What an apply did (`outcome`: created, updated, unchanged or layered) and its post-boot job.

    `layered_on` names the machine a layered domain went onto (OTHER, or HOST:PORT).
    """

    spec: DomainSpec
    outcome: str
    changes: tuple[Change, ...]
    simulated: bool
    job: JobRecord | None
    layered_on: str | None = None


def render(name: str, ctx: Context) -> Rendered:
    """Validate the domain's input and write all its artifacts under the root.

    Input is fully validated before anything is written.
    """
    spec = load_domain(name, ctx.domains_dir, ctx.layout, ctx.libvirt_uri)
    return _write(spec, ctx)


def _write(spec: DomainSpec, ctx: Context) -> Rendered:
    workspace = ctx.layout.domain_dir(spec.name)
    keys = ensure_keys(workspace / "keys", spec.name)
    # First: the base volume's path is in the hypervisor's pool, wherever the first root to use it put it.
    shared = register(spec.libvirt_uri, ctx.layout, spec.image, lambda d: workspace_for(d, ctx).managed())
    digest = render_record.domain_digest(spec, keys, ctx.layout.root, shared.pool)
    if render_record.holds(workspace, digest):
        return Rendered(spec, workspace, shared.directory, [])
    from provisioner.render.domain import render_domain  # Jinja2, pycdlib: only when something is rendered

    artifacts = render_domain(spec, keys, ctx.layout, shared.pool)
    changed = write_artifacts(workspace, artifacts)
    render_record.write(workspace, digest, artifacts)
    return Rendered(spec, workspace, shared.directory, changed)


def domain_lock(ctx: Context, name: str) -> AbstractContextManager[None]:
    """The domain's apply lock (one apply at a time per domain)."""
    return exclusive(ctx.layout.domain_dir(name) / "lock", f"domain {name}", on_wait=ctx.progress.say)


def workspace_for(directory: Path, ctx: Context) -> Workspace:
    """The Terraform workspace in `directory`/terraform (any workspace: domain, shared, volume, network)."""
    state = None if ctx.state_db is None else ctx.state_db.workspace(*_workspace_id(directory, ctx.layout))
    workspace = Workspace(directory / "terraform", cli_config(ctx.layout.terraform, ctx.provider),
                          directory / "logs" / "terraform.log", state)
    if ctx.state_db is not None and directory.parent == ctx.layout.shared:
        # Made before its hypervisor's state was shared by every root: its state moves there.
        workspace.take_over(ctx.state_db.workspace("shared", _root_own_shared(directory, ctx.layout)))
    return workspace


def _workspace_id(directory: Path, layout: Layout) -> tuple[str, str]:
    """(kind, name) naming the workspace's state in PostgreSQL.

    Domains, volumes and networks are named by what they manage, so every
    root managing them shares one state. So is the shared workspace of a
    hypervisor other roots reach too (provisioner.shared.across_roots): its
    pool and base volumes are the hypervisor's. That of a hypervisor only
    this root reaches (its simulators, a local URI: each host's own) is
    this root's own.
    """
    parent = directory.parent
    kinds = {layout.domains: "domain", layout.root / "volumes": "volume", layout.root / "networks": "network"}
    if parent in kinds:
        return kinds[parent], directory.name
    if parent == layout.shared:
        uri = recorded_uri(directory)
        if uri is not None and across_roots(uri, layout):
            return "shared", directory.name
        return "shared", _root_own_shared(directory, layout)
    raise ProvisionError(f"{directory}: not a workspace under {layout.root}")


def _root_own_shared(directory: Path, layout: Layout) -> str:
    """The name of the state of a shared workspace kept per root: the hypervisor's directory and the root's id."""
    return f"{directory.name}_{root_id(layout.terraform)}"


def ensure_shared(directory: Path, ctx: Context) -> None:
    """Apply the hypervisor's shared workspace in `directory` (pool, base images) if its plan changed.

    When other roots share its state, under a lock of theirs too, with the
    plan rendered again from that state first: an apply of a plan made
    before another root's apply would drop what that one added.
    """
    uri = recorded_uri(directory)
    shared_state = ctx.state_db is not None and uri is not None and across_roots(uri, ctx.layout)
    with shared_lock(directory), \
            (ctx.state_db.lock(_workspace_id(directory, ctx.layout)) if shared_state else nullcontext()):
        workspace = workspace_for(directory, ctx)
        if shared_state:
            render_shared(directory, uri, ctx.layout, None, lambda _: workspace.managed())
        plan_digest = (directory / "terraform" / "main.tf").read_bytes()
        stamp = directory / "applied.tf"
        if stamp.exists() and stamp.read_bytes() == plan_digest and workspace.managed():
            return
        with ctx.progress.step(f"shared objects ({directory.name}): terraform apply"), \
                storage_failures(workspace.directory):
            workspace.init()
            workspace.apply()
        write_atomic(stamp, plan_digest)


def apply_standalone(directory: Path, label: str, plan: str, ctx: Context, yes: bool) -> str:
    """Write the plan of a workspace owned by no domain (a volume, a network) and converge it: the outcome.

    The workspace's lock serialises applies and status.json records the
    result; ProvisionError if the apply fails (or would replace something
    without `yes`).
    """
    with exclusive(directory / "lock", label, on_wait=ctx.progress.say):
        write_atomic(directory / "terraform" / "main.tf", plan.encode())
        started = time.time()
        try:
            outcome, _ = converge(workspace_for(directory, ctx), ctx, label, yes)
        except ProvisionError as exc:
            record_status(directory, "failed", started, str(exc))
            raise
        record_status(directory, "applied", started)
    return outcome


def destroy_standalone(directory: Path, label: str, ctx: Context) -> None:
    """Destroy what a workspace owned by no domain manages, then the workspace (nothing to do if it has none)."""
    if not directory.exists():
        return
    with exclusive(directory / "lock", label, on_wait=ctx.progress.say):
        workspace = workspace_for(directory, ctx)
        if workspace.managed():
            with ctx.progress.step(f"{label}: terraform destroy"):
                workspace.init()
                workspace.destroy()
    shutil.rmtree(directory)


def provision(name: str, ctx: Context, yes: bool = False, wait: bool = True) -> Applied:
    """Load DOMAIN's input directory, then provision_spec() it."""
    return provision_spec(_load(name, ctx), ctx, yes, wait)


def provision_spec(spec: DomainSpec, ctx: Context, yes: bool = False, wait: bool = True) -> Applied:
    """Render, converge the guest through Terraform (shared workspace first), then post-boot.

    Both doors end here: a domain directory (provision) and the API (a spec
    built from a Nova request). The post-boot job is queued when the guest
    was created or changed, or the last one did not finish, or the site
    archive changed; `wait` runs it right away (else a worker does).
    """
    _refuse_layered(spec)
    with domain_lock(ctx, spec.name):
        with ctx.progress.step(f"{spec.name}: render"):
            rendered = _write(spec, ctx)
        ensure_shared(rendered.shared_workspace, ctx)
        workspace = workspace_for(rendered.workspace, ctx)
        started = time.time()
        try:
            outcome, changes = converge(workspace, ctx, spec.name, yes)
        except ProvisionError as exc:
            record_status(rendered.workspace, "failed", started, str(exc))
            raise
        record_status(rendered.workspace, "applied", started)
    job = None
    if outcome != "unchanged" or postboot_pending(ctx, spec, rendered.workspace):
        # Outside the domain lock: a long make must not block the next apply.
        job = schedule_postboot(ctx.layout, spec, rendered.workspace, wait, ctx.progress,
                                address=spec.ssh_address)
    return Applied(spec, outcome, changes, is_simulated(spec.libvirt_uri), job)


def _load(name: str, ctx: Context) -> DomainSpec:
    """Load DOMAIN; on a real hypervisor, import a URL image first so it is named by content.

    The simulator records a URL without downloading it, so it is left as is there.
    """
    spec = load_domain(name, ctx.domains_dir, ctx.layout, ctx.libvirt_uri)
    if not is_url(spec.image.source) or is_simulated(spec.libvirt_uri):
        return spec
    with ctx.progress.step(f"{spec.name}: importing image {spec.image.source}"):
        ImageStore(ctx.layout).import_source(spec.image.source, digests=dict(spec.image_digests),
                                             progress=ctx.progress)
    return load_domain(name, ctx.domains_dir, ctx.layout, ctx.libvirt_uri)


def postboot_pending(ctx: Context, spec: DomainSpec, workspace: Path) -> bool:
    """An unchanged guest needs a post-boot job only if the last one failed or the site changed."""
    # A backup job (`provision backup`) sets nothing up: only setup and layer jobs count here.
    jobs = [job for job in queue_for(ctx.layout, PostbootSettings.from_env()).list(domain=spec.name)
            if job.kind != BACKUP]
    snapshot = workspace / "postboot" / "data.tar.gz"
    if spec.data_archive is None:
        archive_changed = snapshot.exists()
    else:
        archive_changed = not snapshot.exists() or snapshot.read_bytes() != read_archive(spec.data_archive, spec.input_dir)
    return archive_changed or not jobs or jobs[-1].state in (FAILED, CANCELLED)


_STORAGE_FAILURES = tuple(os.strerror(e).lower() for e in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG))


@contextmanager
def storage_failures(directory: Path) -> Iterator[None]:
    """Turn a terraform command that failed for want of space (or on a read-only filesystem) into one line.

    Terraform's own report is pages long (state it could not write, printed
    as JSON); its state is only replaced once written, so a re-run converges.
    """
    try:
        yield
    except TerraformError as exc:
        text = f"{exc.result.stderr}\n{exc.result.stdout}".lower()
        reason = next((r for r in _STORAGE_FAILURES if r in text), None)
        if reason is None:
            raise
        raise ProvisionError(f"{directory}: terraform {exc.result.argv[1]} failed: {reason}: make room (or fix "
                             "the filesystem) and run the command again") from None


def converge(workspace: Workspace, ctx: Context, name: str, yes: bool) -> tuple[str, tuple[Change, ...]]:
    """init, then create, or plan and apply what changed (replacements need `yes`): (outcome, changes)."""
    with storage_failures(workspace.directory):
        return _converge(workspace, ctx, name, yes)


def _converge(workspace: Workspace, ctx: Context, name: str, yes: bool) -> tuple[str, tuple[Change, ...]]:
    with ctx.progress.step(f"{name}: terraform init"):
        workspace.init()
    if not workspace.managed():
        with ctx.progress.step(f"{name}: terraform apply (create)"):
            workspace.apply()
        return "created", ()
    with ctx.progress.step(f"{name}: terraform plan"):
        plan = workspace.plan()
    if not plan.changes:
        return "unchanged", ()
    for change in plan.changes:
        ctx.progress.say(f"   {'/'.join(change.actions)}: {change.address}")
    replaced = [c.address for c in plan.changes if c.destroys]
    if replaced and not yes:
        confirm(f"{name}: this replaces {', '.join(replaced)}")
    with ctx.progress.step(f"{name}: terraform apply"):
        workspace.apply(plan)
    return "updated", plan.changes


def confirm(question: str) -> None:
    """Ask on a terminal; without one, refuse and say how to go ahead."""
    if not sys.stdin.isatty():
        raise ProvisionError(f"{question}; nothing was changed: re-run with --yes to go ahead")
    answer = input(f"{question}. Go ahead? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ProvisionError("cancelled: nothing was changed")


def record_status(workspace: Path, state: str, started: float, error: str | None = None) -> None:
    """Write the workspace's status.json: the last apply's state, times and error."""
    record = {"state": state, "started": started, "finished": time.time(), "error": error}
    write_atomic(workspace / "status.json", (json.dumps(record, indent=2) + "\n").encode())


def plan(name: str, ctx: Context) -> str:
    """Render and show what an apply would change; nothing in libvirt changes."""
    spec = _load(name, ctx)
    _refuse_layered(spec)
    with domain_lock(ctx, name):
        rendered = _write(spec, ctx)
        workspace = workspace_for(rendered.workspace, ctx)
        workspace.init()
        return workspace.plan().text


def _refuse_layered(spec: DomainSpec) -> None:
    if spec.depends_on is not None:
        raise ProvisionError(f"{spec.name} is layered onto {spec.depends_on} (depends_on): it has no VM and no "
                             f"Terraform plan; `provision {spec.name}` layers it (provisioner.layering)")


def destroy(name: str, ctx: Context) -> None:
    """Destroy exactly this domain's resources, then its workspace; shared objects stay."""
    validate_domain_name(name)
    directory = ctx.layout.domain_dir(name)
    if not (directory / "terraform" / "main.tf").is_file():
        raise ProvisionError(f"no domain {name!r} under {ctx.layout.domains}")
    _destroy(name, directory, ctx)


def destroy_elsewhere_built(name: str, uri: str, ctx: Context) -> None:
    """Destroy domain `name` from its state in PostgreSQL, though this root never built it (another API node did).

    The workspace gets a plan with no resources (only the provider for
    `uri`), so `terraform destroy` removes whatever the shared state holds;
    nothing to do when that state is empty. Needs `ctx.state_db`.
    """
    validate_domain_name(name)
    if ctx.state_db is None:
        raise ProvisionError(f"domain {name}: not built under {ctx.layout.root}, and its Terraform state is not in "
                             "a shared database (no `database:`): nothing here can destroy it")
    directory = ctx.layout.domain_dir(name)
    from provisioner.render.plan import render_orphan_plan  # Jinja2: not needed by the other commands

    with domain_lock(ctx, name):
        write_atomic(directory / "terraform" / "main.tf", render_orphan_plan(uri).encode())
    _destroy(name, directory, ctx)


def _destroy(name: str, directory: Path, ctx: Context) -> None:
    with domain_lock(ctx, name):
        queue = queue_for(ctx.layout, PostbootSettings.from_env())
        for job in queue.list(states=(QUEUED,), domain=name):
            queue.cancel(job.id)
        workspace = workspace_for(directory, ctx)
        if workspace.managed():
            with ctx.progress.step(f"{name}: terraform destroy"):
                workspace.init()
                workspace.destroy()
    shutil.rmtree(directory)
