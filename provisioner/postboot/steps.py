"""The steps of a post-boot job. Each is idempotent: run again after a crash, it
finds what was already done (on the guest) and carries on from there."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from provisioner.postboot import guest_script
from provisioner.postboot.address import Address, libvirt_address, parse_address, tcp_refusal
from provisioner.postboot.cloudinit_status import DONE, ERROR, MISSING, DISABLED, CloudInitStatus, parse_cloud_init
from provisioner.postboot.errors import (CloudInitFailed, GuestUnreachable, PostbootError, SetupFailed,
                                         StepTimeout)
from provisioner.postboot.params import JobParams
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.ssh import Result, Ssh, SshTarget

Log = Callable[[str], None]

# A booting guest's SSH port is probed this often, each probe giving up after PORT_PROBE_TIMEOUT.
PORT_PROBE_INTERVAL = 0.25
PORT_PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Guest:
    """A guest reached over SSH, and its login user's home directory."""

    ssh: Ssh
    home: str


@dataclass(frozen=True)
class Outcome:
    """How the guest-side setup ended."""

    phase: str
    status: int


class Backoff:
    """Poll delays: fast at first, growing by `poll_factor` up to `poll_max`."""

    def __init__(self, settings: PostbootSettings):
        self.delay = settings.poll_initial
        self.factor = settings.poll_factor
        self.max = settings.poll_max

    def sleep(self, deadline: float) -> bool:
        """Sleep the next delay (never past `deadline`) and return True; False once the deadline has passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.pause(remaining)
        return True

    def pause(self, limit: float | None = None) -> None:
        """Sleep the next delay (at most `limit`)."""
        time.sleep(self.delay if limit is None else min(self.delay, limit))
        self.delay = min(self.delay * self.factor, self.max)


def resolve_address(domain: str, params: JobParams) -> Address | None:
    """The explicit address, else the first static IP, else libvirt's view (None while unknown)."""
    if params.address:
        return parse_address(params.address)
    if params.static_ips:
        return Address(params.static_ips[0])
    if params.libvirt_uri:
        return libvirt_address(params.libvirt_uri, params.machine or domain)
    return None


def connect(domain: str, params: JobParams, settings: PostbootSettings, log: Log) -> Guest:
    """Wait until SSH works as the job's user with the pinned host key.

    A host key other than the pinned one fails at once (HostKeyRejected); so
    does a refused login on an existing machine (the operator must authorize
    the key: no boot is in progress that could still do it). Any other failure
    is retried, backing off, until `ssh_timeout`.
    """
    deadline = time.monotonic() + settings.ssh_timeout
    last = "the guest's address is not known yet (no DHCP lease in libvirt)"
    backoff = Backoff(settings)
    while True:
        address = resolve_address(domain, params)
        refusal = address and tcp_refusal(address, PORT_PROBE_TIMEOUT)
        if refusal:
            # Nothing answers yet: look again soon, without an SSH attempt or a growing back-off.
            last = refusal
            if time.monotonic() + PORT_PROBE_INTERVAL > deadline:
                raise GuestUnreachable(_no_ssh(settings, last))
            time.sleep(PORT_PROBE_INTERVAL)
            continue
        if address is not None:
            target = SshTarget(address.host, address.port, params.user, Path(params.identity),
                               Path(params.known_hosts), params.alias, Path(params.workspace) / "ssh")
            ssh = Ssh(target, settings.connect_timeout, settings.control_persist)
            try:
                result = ssh.run(guest_script.HOME_COMMAND, timeout=settings.connect_timeout + 10)
            except (GuestUnreachable, StepTimeout) as exc:
                last = str(exc)
                if params.existing and "Permission denied" in last:
                    raise GuestUnreachable(f"{last}: {_authorize_hint(params)}") from None
            else:
                home = result.text.strip()
                if result.returncode == 0 and home.startswith("/"):
                    log(f"ssh: logged in as {target}")
                    return Guest(ssh, home)
                last = f"ssh {target}: login probe exited {result.returncode}: {result.stderr or result.text}"
        if not backoff.sleep(deadline):
            raise GuestUnreachable(_no_ssh(settings, last))


def _no_ssh(settings: PostbootSettings, last: str) -> str:
    return f"the guest did not accept SSH within {settings.ssh_timeout:.0f}s (setting ssh_timeout); last error: {last}"


def _authorize_hint(params: JobParams) -> str:
    """How the operator lets the engine in on a machine it did not provision."""
    public = Path(params.identity + ".pub")
    key = public.read_text().strip() if public.is_file() else "(missing)"
    return (f"the machine refused the domain's key: append {public} to ~{params.user}/.ssh/authorized_keys "
            f"there, then run provision again. The key: {key}")


def remote(guest: Guest, command: str, deadline: float, settings: PostbootSettings,
            stdin: Path | None = None, per_call: float | None = None) -> Result:
    """Run a command, retrying while the connection fails (a guest may drop SSH briefly).

    Each try may take `per_call` seconds (default: the command_timeout setting).
    """
    backoff = Backoff(settings)
    per_call = per_call or settings.command_timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            return guest.ssh.run(command, timeout=max(1.0, min(remaining, per_call)), stdin=stdin)
        except (GuestUnreachable, StepTimeout) as exc:
            if not backoff.sleep(deadline):
                raise StepTimeout(f"{exc} (gave up at the step's timeout)") from None


def wait_for_cloud_init(guest: Guest, settings: PostbootSettings, log: Log) -> CloudInitStatus:
    """Poll cloud-init until it is done; raise CloudInitFailed naming the failed modules."""
    deadline = time.monotonic() + settings.cloud_init_timeout
    while True:
        # The command itself waits on the guest while cloud-init runs: no back-off here.
        result = remote(guest, guest_script.cloud_init_command(settings.cloud_init_dir, settings.guest_wait), deadline, settings,
                        per_call=settings.command_timeout + settings.guest_wait)
        status = parse_cloud_init(result.text)
        if status.state == DONE:
            return status
        if status.state in (ERROR, MISSING, DISABLED):
            log("cloud-init status:\n" + result.text.rstrip())
            raise CloudInitFailed(status.describe())
        if time.monotonic() + settings.poll_initial > deadline:
            shown = status.raw_status or result.text.strip()[:200]
            raise StepTimeout(f"cloud-init had not finished after {settings.cloud_init_timeout:.0f}s "
                              f"(setting cloud_init_timeout); its status: {shown}")
        time.sleep(settings.poll_initial)


def guest_state(guest: Guest, directory: PurePosixPath, settings: PostbootSettings) -> str:
    """The job's guest-side state (see guest_script.state_command)."""
    deadline = time.monotonic() + settings.command_timeout
    return remote(guest, guest_script.state_command(directory), deadline, settings).text.strip()


def push(guest: Guest, directory: PurePosixPath, files: dict[str, Path], settings: PostbootSettings) -> None:
    """Copy host files into the job directory (each lands under its final name atomically)."""
    deadline = time.monotonic() + settings.push_timeout
    for name, source in files.items():
        result = remote(guest, guest_script.push_command(directory, name), deadline, settings, stdin=source,
                         per_call=settings.push_timeout)
        if result.returncode != 0:
            raise PostbootError(f"could not copy {source.name} to the guest's {directory}: "
                                f"{result.stderr or f'exit status {result.returncode}'}")


def submit(guest: Guest, directory: PurePosixPath, settings: PostbootSettings,
           script: str = guest_script.SCRIPT_NAME) -> None:
    """Hand the job's script (the setup script unless named) to the guest's atd (once, even when run again)."""
    deadline = time.monotonic() + settings.command_timeout
    result = remote(guest, guest_script.submit_command(directory, script), deadline, settings)
    if result.returncode != 0:
        raise PostbootError(f"could not submit the setup script to the guest's atd: "
                            f"{result.stderr or f'exit status {result.returncode}'}")


def wait_for_setup(guest: Guest, directory: PurePosixPath, settings: PostbootSettings, log: Log) -> Outcome:
    """Watch the job directory until the script has written its exit status.

    Each command waits on the guest until the state changes (guest_script.wait_state_command),
    so the host needs no back-off and notices the end within a fraction of a second.
    """
    started = time.monotonic()
    deadline = started + settings.make_timeout
    seen = ""
    while True:
        command = guest_script.wait_state_command(directory, seen, settings.guest_wait)
        state = remote(guest, command, deadline, settings,
                       per_call=settings.command_timeout + settings.guest_wait).text.strip()
        if state != seen:
            log(f"guest: {state}")
            seen = state
        if state.startswith("finished "):
            parts = state.split()
            if len(parts) != 3 or not parts[2].isdigit():
                raise PostbootError(f"unreadable exit-status in the guest's {directory}: {state!r}")
            return Outcome(parts[1], int(parts[2]))
        if state == "vanished":
            raise PostbootError(f"the setup script stopped without recording an exit status (was the guest "
                                f"rebooted?); its log is {directory}/make.log on the guest")
        if state in ("absent", "new"):
            raise PostbootError(f"the guest's job directory {directory} lost its submission marker "
                                f"({state}): was it removed?")
        if state == "submitted" and time.monotonic() - started > settings.start_timeout:
            atq = remote(guest, guest_script.ATQ_COMMAND, deadline, settings).text.strip()
            raise StepTimeout(f"atd had not started the setup script after {settings.start_timeout:.0f}s "
                              f"(setting start_timeout): is atd running on the guest? atq: {atq or '(empty)'}")
        if time.monotonic() > deadline:
            raise StepTimeout(f"the setup script had not finished after {settings.make_timeout:.0f}s "
                              f"(setting make_timeout); it may still run on the guest in {directory}")


def fetch_log(guest: Guest, directory: PurePosixPath, settings: PostbootSettings) -> str:
    """The guest-side log (unpack and make output)."""
    deadline = time.monotonic() + settings.command_timeout
    result = remote(guest, guest_script.log_command(directory), deadline, settings)
    return result.text if result.returncode == 0 else f"(no log on the guest: {result.stderr})\n"


def check_outcome(outcome: Outcome) -> None:
    """Raise SetupFailed for a non-zero status, naming the phase."""
    if outcome.status == 0:
        return
    what = "make" if outcome.phase == "make" else "unpacking data.tar.gz"
    raise SetupFailed(f"{what} failed on the guest with exit status {outcome.status}", outcome.status)
