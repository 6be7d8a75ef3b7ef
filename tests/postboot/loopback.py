"""A real loopback "guest" for the post-boot tests: sshd and atd on 127.0.0.1, a test user.

Test modules import these fixtures by name: a conftest.py here would shadow the top-level
one, which other test modules import as `conftest`.

- sshd runs with the domain's engine-generated host key as its HostKey, the
  domain's login key in an AuthorizedKeysFile the tests own, on a free port
  of 127.0.0.1 only;
- atd is this host's (started here if it does not run), running jobs for the
  test user, who is created with useradd and removed at the end;
- MOCK: this host's own cloud-init is disabled, so a stand-in `cloud-init`
  script first on the test user's PATH answers `cloud-init status --long`
  with done or error, as a file in the user's home says; for a layer job's
  `cloud-init --file F single --name M …` it only records what it was asked
  (the arguments in ~/.cloud-init-single, F's content in ~/.cloud-init-file)
  and succeeds: it creates no user and installs no package.

Needs root (useradd, sshd) and `bin/install-deps --test` (openssh-server, at).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import pytest

from provisioner.keys import ensure_keys
from provisioner.layout import Layout
from provisioner.postboot.settings import PostbootSettings
from provisioner.progress import Progress
from provisioner.spec.load import load_domain
from provisioner.spec.model import DomainSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "example.test"
SSHD = "/usr/sbin/sshd"
ATD = "/usr/sbin/atd"
DOMAIN = "example.test"

# The stand-in for cloud-init (see the module docstring): the mode file holds done, error or running.
CLOUD_INIT_STANDIN = """#!/bin/sh
if [ "${1-}" = --file ]; then config=$2; shift 2; fi
if [ "${1-}" = single ]; then
    printf '%s\\n' "$*" >>"$HOME/.cloud-init-single"
    if [ -n "${config-}" ]; then cp "$config" "$HOME/.cloud-init-file"; fi
    exit 0
fi
mode=$(cat "$HOME/.cloud-init-mode" 2>/dev/null || echo done)
case "$mode" in
done) printf 'status: done\\nboot_status_code: enabled-by-generator\\ndetail:\\nDataSourceNoCloud\\n'; exit 0 ;;
error) printf "status: error\\nboot_status_code: enabled-by-generator\\ndetail:\\n('locale', ProcessExecutionError('Unexpected error while running command.'))\\n('package_update_upgrade_install', RuntimeError('apt failed'))\\n"; exit 1 ;;
*) printf 'status: running\\n'; exit 0 ;;
esac
"""

FAST = PostbootSettings(ssh_timeout=15, connect_timeout=3, cloud_init_timeout=10, push_timeout=10,
                        command_timeout=10, start_timeout=10, make_timeout=60, poll_initial=0.05,
                        poll_max=0.5, poll_factor=1.5, control_persist=10, worker_idle=0.1)


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class GuestUser:
    name: str
    home: Path

    def set_cloud_init(self, mode: str) -> None:
        self._give(self.home / ".cloud-init-mode", mode + "\n")

    @property
    def cloud_init_dir(self) -> Path:
        """Stands in for the guest's /run/cloud-init (the job's `cloud_init_dir` setting points here)."""
        return self.home / "run-cloud-init"

    def start_cloud_init(self) -> None:
        """cloud-init is running: its run directory exists, result.json not yet."""
        shutil.rmtree(self.cloud_init_dir, ignore_errors=True)
        self._give(self.cloud_init_dir, None)

    def finish_cloud_init(self, errors: list[str]) -> None:
        """cloud-init has finished: result.json lists its errors."""
        if not self.cloud_init_dir.exists():
            self._give(self.cloud_init_dir, None)
        self._give(self.cloud_init_dir / "result.json", json.dumps({"v1": {"errors": errors}}))

    def _give(self, path: Path, text: str | None) -> None:
        """Create the directory (text None) or file `path` owned by the user: the engine sets a
        private umask in this process, which would leave it unreadable to the user."""
        if text is None:
            path.mkdir()
        else:
            path.write_text(text)
        shutil.chown(path, self.name)


@pytest.fixture(scope="session")
def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the loopback guest needs root (useradd, sshd)")
    for tool in (SSHD, ATD, shutil.which("at"), shutil.which("ssh")):
        if not tool or not os.path.exists(tool):
            pytest.skip(f"{tool} missing: run bin/install-deps --test")


@dataclass(frozen=True)
class Sshd:
    port: int
    process: subprocess.Popen[bytes]


def start_sshd(directory: Path, host_key: Path, authorized: Path, user: GuestUser) -> Sshd:
    port = free_port()
    config = directory / f"sshd-{port}.conf"
    config.write_text(
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / f'sshd-{port}.pid'}\n"
        f"AllowUsers {user.name}\n"
        f"SetEnv PATH={user.home / 'bin'}:/usr/local/bin:/usr/bin:/bin\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin no\nMaxStartups 100\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with open(directory / f"sshd-{port}.log", "wb") as log:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=log)
    wait_for_port(port, process)
    return Sshd(port, process)


def atd_pid() -> int | None:
    """The pid of a live atd (its pid file names it), None if none runs."""
    try:
        pid = int(Path("/run/atd.pid").read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ValueError, IndexError):
        return None
    name, state = stat.split("(", 1)[1].rsplit(")", 1)[0], stat.rsplit(")", 1)[1].split()[0]
    return pid if name == "atd" and state != "Z" else None


@contextmanager
def running_atd() -> Iterator[None]:
    """This host's atd; started (and stopped again afterwards) if it does not run.

    `at` wakes atd through its pid file, so the daemon counts as started once
    the file names it.
    """
    started = None
    if atd_pid() is None:
        Path("/run/atd.pid").unlink(missing_ok=True)
        subprocess.run([ATD], check=True)
        deadline = time.monotonic() + 10
        while (started := atd_pid()) is None:
            assert time.monotonic() < deadline, "atd did not start"
            time.sleep(0.05)
    try:
        yield
    finally:
        if started is not None:
            os.kill(started, signal.SIGTERM)


@contextmanager
def throwaway_user() -> Iterator[GuestUser]:
    """A user (removed with its home afterwards) with the stand-in cloud-init first on its PATH."""
    name = f"pbguest{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    try:
        # '*' instead of useradd's locked '!': with UsePAM no, sshd refuses locked accounts even for keys.
        subprocess.run(["usermod", "--password", "*", name], check=True)
        home = Path(pwd.getpwnam(name).pw_dir)
        bin_dir = home / "bin"
        bin_dir.mkdir()
        (bin_dir / "cloud-init").write_text(CLOUD_INIT_STANDIN)
        (bin_dir / "cloud-init").chmod(0o755)
        shutil.chown(bin_dir, name)
        shutil.chown(bin_dir / "cloud-init", name)
        user = GuestUser(name, home)
        user.set_cloud_init("done")
        yield user
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A short, world-traversable directory (sshd reads the test user's key file from it)."""
    path = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def loopback_sshd(directory: Path, keys: Path, user: GuestUser) -> Iterator[Sshd]:
    """sshd on 127.0.0.1 with the domain's generated host key; the domain's login key is authorized."""
    authorized = directory / "authorized_keys"
    authorized.write_text((keys / "id_ed25519.pub").read_text())
    authorized.chmod(0o644)
    server = start_sshd(directory, keys / "ssh_host_ed25519_key", authorized, user)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(10)


@pytest.fixture(scope="session")
def atd(needs_root: None) -> Iterator[None]:
    with running_atd():
        yield


@pytest.fixture(scope="session")
def guest_user(needs_root: None) -> Iterator[GuestUser]:
    with throwaway_user() as user:
        yield user


@pytest.fixture(scope="session")
def session_dir(needs_root: None) -> Iterator[Path]:
    with scratch_dir() as path:
        yield path


@pytest.fixture(scope="session")
def domain_keys(session_dir: Path) -> Path:
    """example.test's keys, generated once by the engine's own code."""
    keys = session_dir / "keys"
    ensure_keys(keys, DOMAIN)
    return keys


@pytest.fixture(scope="session")
def sshd(session_dir: Path, domain_keys: Path, guest_user: GuestUser, atd: None) -> Iterator[Sshd]:
    with loopback_sshd(session_dir, domain_keys, guest_user) as server:
        yield server


@dataclass(frozen=True)
class Env:
    """One test's engine root and example.test, ready for a post-boot job."""

    layout: Layout
    domains: Path
    spec: DomainSpec
    workspace: Path
    address: str
    settings: PostbootSettings
    user: GuestUser
    progress: Progress


def conf_set(directory: Path, **values: str) -> None:
    conf = directory / "provision.conf"
    kept = [line for line in conf.read_text().splitlines() if line.split("=", 1)[0].strip() not in values]
    conf.write_text("\n".join(kept + [f"{k} = {v}" for k, v in values.items()]) + "\n")


@pytest.fixture
def env(sshd: Sshd, guest_user: GuestUser, domain_keys: Path) -> Iterator[Env]:
    """A fresh root (short path: it holds the ssh control socket) with example.test as the test user."""
    root = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))
    domains = root / "in"
    shutil.copytree(EXAMPLE, domains / DOMAIN)
    conf_set(domains / DOMAIN, admin_user=guest_user.name, libvirt_uri="qemu:///system", domain_type="qemu")
    layout = Layout(root / "vms")
    workspace = layout.domain_dir(DOMAIN)
    shutil.copytree(domain_keys, workspace / "keys")
    guest_user.set_cloud_init("done")
    shutil.rmtree(guest_user.cloud_init_dir, ignore_errors=True)
    for leftover in (".provisioner", "www"):
        shutil.rmtree(guest_user.home / leftover, ignore_errors=True)
    yield Env(layout, domains, load_domain(DOMAIN, domains, layout), workspace, f"127.0.0.1:{sshd.port}",
              replace(FAST, cloud_init_dir=str(guest_user.cloud_init_dir)), guest_user, Progress(quiet=True))
    shutil.rmtree(root, ignore_errors=True)
