"""Layering: a domain set up on a machine it does not own (docs/postboot.md, "Layering").

- `depends_on = OTHER`: OTHER is provisioned first (its normal provision, a
  no-op when unchanged), then the domain is layered onto the machine at the
  root of the chain (a -> b -> c: c owns the VM);
- `--existing [USER@]HOST[:PORT]`: any reachable machine whose host key is
  already known (provisioner.hostkeys).

A layered domain gets a workspace (spec.json, keys, ssh/, postboot/, logs/,
status.json, layer.json) but no Terraform resources; its post-boot job of kind
`layer` does the rest over SSH.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import InputError, ProvisionError
from provisioner.excerpt import cut
from provisioner.hostkeys import host_keys_for, parse_keys
from provisioner.keys import DomainKeys, ensure_keys
from provisioner.layer_record import LayerRecord, read_layer, write_layer
from provisioner.layout import is_simulated
from provisioner.pipeline import (
    Applied,
    Context,
    destroy,
    domain_lock,
    postboot_pending,
    provision,
    record_status,
)
from provisioner.postboot.address import parse_address
from provisioner.postboot.layer_commands import CONFIG_NAME
from provisioner.postboot.params import JobParams
from provisioner.postboot.queue import QUEUED, queue_for
from provisioner.postboot.schedule import schedule_layer, stage_site
from provisioner.postboot.settings import PostbootSettings
from provisioner.render.cloudinit import layer_config_doc
from provisioner.render.yamltext import dump
from provisioner.spec.load import load_domain
from provisioner.spec.model import DomainSpec
from provisioner.spec.names import validate_domain_name
from provisioner.terraform.backend import BACKEND_FILE
from provisioner.terraform.workspace import Workspace
from provisioner.workspace import write_atomic

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Machine:
    """Where a layered domain goes, and how the engine logs in there.

    `label` is what the operator named (OTHER, or HOST:PORT); `owner` the
    domain owning the VM (or HOST:PORT). `host_keys` (`TYPE BASE64`) are the
    only keys accepted. `libvirt_uri` and `owner` let the job ask libvirt for
    the address when neither `address` nor `static_ips` give it.
    """

    label: str
    owner: str
    user: str
    identity: Path
    host_keys: tuple[str, ...]
    address: str | None = None
    static_ips: tuple[str, ...] = ()
    libvirt_uri: str | None = None
    existing: bool = False


def provision_domain(name: str, ctx: Context, yes: bool = False, wait: bool = True,
                     existing: str | None = None, host_key: Path | None = None) -> Applied:
    """`provision DOMAIN`: a VM of its own, or layered (depends_on, or `existing` [USER@]HOST[:PORT])."""
    if existing is None and host_key is not None:
        raise InputError("--host-key", "only applies with --existing")
    chain = resolve_chain(name, ctx)
    if existing is not None:
        if chain[0].depends_on:
            raise InputError(str(ctx.domains_dir / name / "provision.conf"),
                             f"key 'depends_on' ({chain[0].depends_on}) and --existing exclude each other")
        return layer(chain[0], existing_machine(chain[0], existing, host_key, ctx), ctx, wait)
    if len(chain) == 1:
        return provision(name, ctx, yes=yes, wait=wait)
    provision_domain(chain[1].name, ctx, yes=yes, wait=wait)
    return layer(chain[0], dependency_machine(chain[0], chain[-1], ctx), ctx, wait)


def resolve_chain(name: str, ctx: Context) -> list[DomainSpec]:
    """`name`'s spec, then each domain it depends on, down to the one owning the VM.

    A cycle is an InputError naming it (`a -> b -> a`).
    """
    chain = [load_domain(name, ctx.domains_dir, ctx.layout, ctx.libvirt_uri)]
    while chain[-1].depends_on is not None:
        names = [spec.name for spec in chain]
        following = chain[-1].depends_on
        if following in names:
            cycle = " -> ".join([*names[names.index(following):], following])
            raise InputError(str(ctx.domains_dir / chain[-1].name / "provision.conf"),
                             f"key 'depends_on': a cycle: {cycle}; one domain of it must own a VM "
                             "(no depends_on)")
        chain.append(load_domain(following, ctx.domains_dir, ctx.layout, ctx.libvirt_uri))
    return chain


def dependency_machine(spec: DomainSpec, owner: DomainSpec, ctx: Context) -> Machine:
    """The machine of `owner` (the root of `spec`'s chain), reached like owner's own post-boot job.

    The login is `spec`'s admin_user with owner's login key, checked against
    owner's pinned host key: the machine is owner's.
    """
    keys = ctx.layout.domain_dir(owner.name) / "keys"
    host_key, identity = keys / "ssh_host_ed25519_key.pub", keys / "id_ed25519"
    if not host_key.is_file() or not identity.is_file():
        raise ProvisionError(f"{owner.name} has no keys in {keys}: provision it first")
    return Machine(
        label=spec.depends_on or owner.name, owner=owner.name, user=spec.admin_user, identity=identity,
        host_keys=parse_keys(host_key.read_text()), address=owner.ssh_address,
        static_ips=tuple(str(a.ip) for nic in owner.nics for a in nic.addresses), libvirt_uri=owner.libvirt_uri)


def existing_machine(spec: DomainSpec, target: str, host_key: Path | None, ctx: Context) -> Machine:
    """A machine the engine did not provision: `[USER@]HOST[:PORT]` (USER default: spec's admin_user).

    The login uses the domain's own key, which the operator authorizes there;
    the host key must already be known (refused otherwise, nothing written).
    """
    user, at, rest = target.partition("@")
    if not at:
        user, rest = spec.admin_user, target
    if not _USER.fullmatch(user):
        raise InputError("--existing", f"{cut(user)} is not a valid user name")
    address = parse_address(rest, "--existing")
    keys = host_keys_for(address, host_key)
    ctx.progress.say(f"{spec.name}: pinning the host key of {address} from {keys.source}: "
                     + "; ".join(keys.fingerprints))
    identity = ctx.layout.domain_dir(spec.name) / "keys" / "id_ed25519"
    return Machine(label=str(address), owner=str(address), user=user, identity=identity, host_keys=keys.keys,
                   address=str(address), existing=True)


def layer(spec: DomainSpec, machine: Machine, ctx: Context, wait: bool = True) -> Applied:
    """Write `spec`'s workspace (no Terraform resources) and queue its layer job onto `machine`.

    The job is queued again only when what it applies changed, the site
    archive changed, or the last job did not finish; `wait` runs it now.
    """
    workspace = ctx.layout.domain_dir(spec.name)
    started = time.time()
    with domain_lock(ctx, spec.name):
        # A backend.tf: its state is in PostgreSQL (the API's database), unreadable here; a VM all the same.
        if Workspace.read_managed(workspace / "terraform" / "terraform.tfstate") or \
                (workspace / "terraform" / BACKEND_FILE).exists():
            raise ProvisionError(f"{spec.name} has a VM of its own (Terraform state in {workspace / 'terraform'}): "
                                 f"`provision destroy {spec.name}` before layering it onto {machine.label}")
        pending = postboot_pending(ctx, spec, workspace)
        keys = ensure_keys(workspace / "keys", spec.name)
        if machine.existing:
            ctx.progress.say(f"{spec.name}: logging in to {machine.user}@{machine.label} with "
                             f"{machine.identity}.pub: it must be in ~{machine.user}/.ssh/authorized_keys there")
        write_atomic(workspace / "spec.json", (json.dumps(spec.to_json(), indent=2, sort_keys=True) + "\n").encode())
        params = _stage(spec, machine, keys, workspace)
        changed = write_layer(workspace, LayerRecord(machine.label, machine.owner, machine.existing,
                                                     _digest(params)))
        record_status(workspace, "layered", started)
    job = None
    if changed or pending:
        job = schedule_layer(ctx.layout, spec.name, params, wait, ctx.progress)
    simulated = machine.libvirt_uri is not None and is_simulated(machine.libvirt_uri)
    return Applied(spec, "layered" if job else "unchanged", (), simulated, job, layered_on=machine.label)


def _stage(spec: DomainSpec, machine: Machine, keys: DomainKeys, workspace: Path) -> JobParams:
    """Write the job's host-side inputs: pinned host keys, the cloud-config, the site archive and script."""
    known_hosts = workspace / "ssh" / "known_hosts"
    write_atomic(known_hosts, "".join(f"{spec.name} {key}\n" for key in machine.host_keys).encode())
    config = workspace / "postboot" / CONFIG_NAME
    write_atomic(config, dump(layer_config_doc(spec, keys), header="#cloud-config\n").encode())
    script, archive = stage_site(spec, workspace)
    return JobParams(
        workspace=str(workspace), user=machine.user, alias=spec.name, identity=str(machine.identity),
        known_hosts=str(known_hosts), address=machine.address, static_ips=machine.static_ips,
        libvirt_uri=machine.libvirt_uri, archive=str(archive) if archive else None,
        script=str(script) if script else None, machine=None if machine.existing else machine.owner,
        layer_config=str(config), layer_packages=spec.install_packages,
        layer_ips=tuple(str(a) for nic in spec.nics for a in nic.addresses), existing=machine.existing)


def _digest(params: JobParams) -> str:
    sha = hashlib.sha256(json.dumps(params.to_json(), sort_keys=True).encode())
    for path in (params.known_hosts, params.layer_config):
        if path is not None:
            sha.update(Path(path).read_bytes())
    return sha.hexdigest()


def destroy_domain(name: str, ctx: Context) -> LayerRecord | None:
    """Destroy a domain: a VM and its workspace, or, for a layered domain, its workspace only.

    Returns the layer record of a layered domain (its machine is not touched).
    """
    validate_domain_name(name)
    directory = ctx.layout.domain_dir(name)
    record = read_layer(directory)
    if record is None:
        destroy(name, ctx)
        return None
    with domain_lock(ctx, name):
        queue = queue_for(ctx.layout, PostbootSettings.from_env())
        for job in queue.list(states=(QUEUED,), domain=name):
            queue.cancel(job.id)
    shutil.rmtree(directory)
    return record
