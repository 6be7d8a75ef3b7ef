"""Queueing a domain's post-boot job after its apply (and running it right away, by default)."""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.layout import Layout, is_simulated
from provisioner.postboot.address import parse_address
from provisioner.postboot.errors import PostbootFailed
from provisioner.postboot.params import LAYER, SETUP, JobParams
from provisioner.postboot.queue import FAILED, SKIPPED, JobRecord, queue_for
from provisioner.postboot.settings import PostbootSettings
from provisioner.progress import Progress
from provisioner.spec.archive import read_archive
from provisioner.spec.model import DomainSpec
from provisioner.workspace import write_atomic

# libvirt's test driver: nothing boots, there is no guest to reach.


def setup_params(spec: DomainSpec, workspace: Path, address: str | None = None) -> JobParams:
    """Write the job's host-side inputs into the workspace and describe them.

    - `ssh/known_hosts`: the guest's host key the engine generated, under the
      domain's name (ssh's HostKeyAlias), so only that key is accepted;
    - `postboot/setup.sh`: the guest script;
    - `postboot/data.tar.gz`: a snapshot of the input archive, so the job
      pushes what was validated even if the input changes meanwhile.
    """
    keys = workspace / "keys"
    host_key = keys / "ssh_host_ed25519_key.pub"
    identity = keys / "id_ed25519"
    if not host_key.is_file() or not identity.is_file():
        raise ProvisionError(f"{keys}: the domain's keys are missing: render the domain first")
    known_hosts = workspace / "ssh" / "known_hosts"
    write_atomic(known_hosts, f"{spec.name} {host_key.read_text().strip()}\n".encode())
    script, archive = stage_site(spec, workspace)
    return JobParams(
        workspace=str(workspace),
        user=spec.admin_user,
        alias=spec.name,
        identity=str(identity),
        known_hosts=str(known_hosts),
        address=address,
        static_ips=tuple(str(a.ip) for nic in spec.nics for a in nic.addresses),
        libvirt_uri=spec.libvirt_uri,
        archive=str(archive) if archive else None,
        script=str(script) if script else None,
    )


def stage_site(spec: DomainSpec, workspace: Path) -> tuple[Path | None, Path | None]:
    """Write the setup script and a snapshot of data.tar.gz into the workspace; (None, None) without an archive."""
    if spec.data_archive is None:
        return None, None
    from provisioner.postboot.guest_script import render_setup_script  # Jinja2: only for a site to stage

    override = spec.input_dir / "templates" if spec.input_dir else None
    script = workspace / "postboot" / "setup.sh"
    write_atomic(script, render_setup_script(spec.name, override).encode())
    archive = workspace / "postboot" / "data.tar.gz"
    write_atomic(archive, read_archive(spec.data_archive, spec.input_dir))
    return script, archive


def schedule_postboot(layout: Layout, spec: DomainSpec, workspace: Path, wait: bool, progress: Progress, *,
                      address: str | None = None, settings: PostbootSettings | None = None) -> JobRecord:
    """Queue `spec`'s post-boot job; with `wait`, run it now and raise PostbootFailed if it fails.

    Call after the domain's apply, with the domain's workspace (its keys must
    exist). `address` (`HOST[:PORT]`) overrides where SSH is reached; without
    it the first static IP is used, else the address libvirt reports. For a
    simulated hypervisor (`test:` URI) the job is recorded as skipped.
    """
    if address is not None:
        parse_address(address, f"{spec.name}: ssh address")
    params = setup_params(spec, workspace, address)
    return _queue(layout, spec.name, SETUP, params, wait, progress, settings or PostbootSettings.from_env())


def schedule_layer(layout: Layout, domain: str, params: JobParams, wait: bool, progress: Progress, *,
                   settings: PostbootSettings | None = None) -> JobRecord:
    """Queue `domain`'s layer job (`params` from provisioner.layering); like schedule_postboot otherwise.

    `params.libvirt_uri` is the machine's hypervisor: on a simulated one the
    job is recorded as skipped.
    """
    return _queue(layout, domain, LAYER, params, wait, progress, settings or PostbootSettings.from_env())


def _queue(layout: Layout, domain: str, kind: str, params: JobParams, wait: bool, progress: Progress,
           settings: PostbootSettings) -> JobRecord:
    """Queue (or record as skipped) and, with `wait`, run the job; the caller reports the outcome."""
    queue = queue_for(layout, settings)
    uri = params.libvirt_uri or ""
    if is_simulated(uri):
        job = queue.add(domain, kind, params, state=SKIPPED,
                        message=f"simulated hypervisor ({uri}): no guest boots, nothing to reach")
        return job
    job = queue.add(domain, kind, params)
    if not wait:
        return job
    from provisioner.postboot.worker import run_now  # the job runner (ssh): only to run a job here

    job = run_now(queue, job.id, settings, progress)
    if job.state == FAILED:
        raise PostbootFailed(f"{domain}: post-boot job {job.id} failed: {job.message}"
                             f"{f'; log: {job.log_path}' if job.log_path else ''}")
    return job
