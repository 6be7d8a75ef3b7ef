"""Keeping the embedded provider warm: find or start it, and tell Terraform to attach to it.

Terraform starts a plugin process per provider instance (3-4 per apply), and
each start of the Python provider costs more than the apply itself. The warm
provider (provisioner/provider/warm.py) is one process per root and uid that
serves every run; Terraform attaches to it through TF_REATTACH_PROVIDERS,
its documented way to use an unmanaged provider.

Anything going wrong here (the process does not start, its socket path is too
long) prints one warning line and returns None: the run then starts the
provider itself, as without the warm provider. Never a failed provision.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.provider import PROVIDER_ADDRESS
from provisioner.provider import warm

ENABLE_ENV = "PROVISION_WARM_PROVIDER"  # "0" (or "false", "no", "off") turns the warm provider off
IDLE_ENV = "PROVISION_WARM_PROVIDER_IDLE"  # seconds without a connection before it exits
DEFAULT_IDLE = 300.0
START_TIMEOUT = 15.0
# sockaddr_un.sun_path is 108 bytes, NUL included.
MAX_SOCKET_PATH = 107
REATTACH_ENV = "TF_REATTACH_PROVIDERS"
# Out of room: the run itself fails on it next, with its own one-line error; a warning would be noise.
SILENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# After a failed start, runs of this process go without for a while: one warning, not one per command.
RETRY_AFTER = 60.0
_failed_at: dict[Path, float] = {}


@dataclass(frozen=True)
class WarmProvider:
    """A running warm provider: its pid and the socket Terraform connects to."""

    pid: int
    socket: Path

    def reattach(self) -> str:
        """TF_REATTACH_PROVIDERS's value for this provider.

        `Test` tells go-plugin the process is not its to kill: without it,
        Terraform's client asks it to exit and kills it 2 s later.
        """
        return json.dumps({PROVIDER_ADDRESS: {
            "Protocol": "grpc", "ProtocolVersion": 6, "Pid": self.pid, "Test": True,
            "Addr": {"Network": "unix", "String": str(self.socket)}}})

    def alive(self) -> bool:
        """True when something accepts connections on its socket (a probe, closed at once)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        return True


def enabled() -> bool:
    """False when PROVISION_WARM_PROVIDER turns the warm provider off."""
    return os.environ.get(ENABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def idle_timeout() -> float:
    """PROVISION_WARM_PROVIDER_IDLE in seconds (default 300); a bad value warns and uses the default."""
    raw = os.environ.get(IDLE_ENV)
    if raw is None:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        warn(f"{IDLE_ENV} must be a number of seconds in (0, 86400], not {raw[:40]!r}: using {DEFAULT_IDLE:g}")
        return DEFAULT_IDLE
    return value


def run_dir(terraform_dir: Path) -> Path:
    """`<root>/run/provider-<uid>` for the engine's `<root>/terraform`."""
    return Path(terraform_dir).absolute().parent / "run" / f"provider-{os.getuid()}"


def running(directory: Path) -> WarmProvider | None:
    """The warm provider serving from `directory`, if it is up."""
    try:
        info = json.loads((directory / warm.INFO).read_text())
        provider = WarmProvider(int(info["pid"]), Path(info["socket"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return provider if provider.alive() else None


def ensure(terraform_dir: Path) -> WarmProvider | None:
    """The warm provider for this root and uid, started if needed; None when off or it cannot run."""
    if not enabled():
        return None
    directory = run_dir(terraform_dir)
    if len(str(directory / warm.SOCKET)) > MAX_SOCKET_PATH or \
            len(str(warm.own_path(directory, warm.CONN_DIR, 4194304) / "99999999")) > MAX_SOCKET_PATH:
        warn(f"the root's path is too long for a unix socket ({directory}): starting the provider per run")
        return None
    provider = running(directory)
    if provider is not None:
        return provider
    if time.monotonic() - _failed_at.get(directory, -RETRY_AFTER) < RETRY_AFTER:
        return None
    try:
        _private_dir(directory.parent)
        _private_dir(directory)
        with _start_lock(directory):
            provider = running(directory)  # another process may have started it meanwhile
            if provider is None:
                provider = _start(directory, idle_timeout())
    except (OSError, StartFailed) as exc:
        _failed_at[directory] = time.monotonic()
        if isinstance(exc, OSError) and exc.errno in SILENT_ERRNOS:
            return None
        warn(f"could not start the warm provider ({exc}): starting the provider per run")
        return None
    return provider


class StartFailed(Exception):
    """The warm provider process did not come up."""


def _start(directory: Path, idle: float) -> WarmProvider:
    from provisioner.provider.mirror import project_root

    env = dict(os.environ)
    env["PYTHONPATH"] = str(project_root()) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(directory / warm.LOG, "ab") as log:
        # Its own session: a Ctrl-C at the terminal that ran `provision` must not stop it.
        process = subprocess.Popen(
            [os.path.abspath(sys.executable), "-P", "-m", "provisioner.provider.warm", str(directory),
             "--idle", str(idle)],
            # cwd "/": a long-lived process must not keep the caller's directory busy.
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env, cwd="/",
            start_new_session=True, close_fds=True)
    assert process.stdout is not None
    try:
        # A selector, not select(): the API process that runs builds may hold descriptors above 1023.
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(START_TIMEOUT)
        line = process.stdout.readline() if ready else b""
    finally:
        process.stdout.close()
    if line.strip() != warm.READY_LINE.encode():
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()
        words = line.split()
        if len(words) == 2 and words[0] == warm.FAILED_PREFIX.encode() and words[1].isdigit():
            code = int(words[1])
            raise OSError(code, f"{os.strerror(code)}; see {directory / warm.LOG}")
        raise StartFailed(f"no ready line within {START_TIMEOUT:g} s; see {directory / warm.LOG}")
    # Not waited for: it outlives this call; subprocess reaps it if this process outlives it.
    provider = running(directory)
    if provider is None or provider.pid != process.pid:
        raise StartFailed(f"it did not answer on {directory / warm.SOCKET}")
    return provider


@contextlib.contextmanager
def _start_lock(directory: Path):
    fd = os.open(directory / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + START_TIMEOUT + 5
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StartFailed("another process holds its start lock") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if info.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise StartFailed(f"{path} is not a directory of this user")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def warn(message: str) -> None:
    """One warning line on stderr (the warm provider is an optimisation: never an error)."""
    print(f"provision: warning: {message}", file=sys.stderr)
