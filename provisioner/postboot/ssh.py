"""Running commands on a guest with OpenSSH: pinned host key, batch mode, one multiplexed connection.

The host key is checked against a known_hosts file the engine wrote (the key it
generated and gave cloud-init), under the alias of the domain's name: nothing
is ever learned on first contact, and no user or system ssh configuration is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from provisioner.errors import ProvisionError
from provisioner.postboot.errors import GuestUnreachable, HostKeyRejected, PostbootError, StepTimeout

# sun_path is 108 bytes; ssh appends ".XXXXXXXXXXXXXXXX" to the path while it binds.
_SOCKET_PATH_MAX = 108 - 18
_HOST_KEY_FAILURES = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in to a guest."""

    host: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    alias: str
    control_dir: Path | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def control_path(self) -> Path | None:
        """The ControlMaster socket, or None when the directory's path is too long for a socket."""
        if self.control_dir is None:
            return None
        # A digest, not the address: ssh expands '%' in ControlPath (IPv6 scope ids have one).
        digest = hashlib.sha256(f"{self.user}@{self.host}:{self.port}".encode()).hexdigest()[:16]
        path = self.control_dir / f"cm-{digest}"
        return path if len(str(path).encode()) <= _SOCKET_PATH_MAX else None

    def options(self, connect_timeout: float, persist: float) -> list[str]:
        """ssh options shared by every command to this target."""
        opts = [
            "-F", "none",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            # Quoted: ssh splits these values at whitespace into several files.
            "-o", f'UserKnownHostsFile="{self.known_hosts}"',
            "-o", f'GlobalKnownHostsFile="{self.known_hosts}"',
            "-o", f"HostKeyAlias={self.alias}",
            "-o", "CheckHostIP=no",
            "-o", "UpdateHostKeys=no",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "PreferredAuthentications=publickey",
            "-o", f"ConnectTimeout={max(1, round(connect_timeout))}",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "LogLevel=ERROR",
            "-i", str(self.identity),
            "-p", str(self.port),
            "-l", self.user,
        ]
        control = self.control_path
        if control is None:
            opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        else:
            opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control}",
                     "-o", f"ControlPersist={max(1, round(persist))}"]
        return opts


@dataclass(frozen=True)
class Download:
    """A finished streamed command: its exit status, the bytes it wrote, its stderr."""

    returncode: int
    size: int
    stderr: str


class DownloadTooLarge(PostbootError):
    """More bytes came than the download's cap allows."""


@dataclass(frozen=True)
class Result:
    """A finished remote command."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class Ssh:
    """Runs shell command lines on one target; every argument in them must already be quoted."""

    def __init__(self, target: SshTarget, connect_timeout: float = 10.0, persist: float = 120.0):
        self.target = target
        self.connect_timeout = connect_timeout
        self.persist = persist
        if target.control_dir is not None:
            target.control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _argv(self, extra: Sequence[str] = ()) -> list[str]:
        return ["ssh", *self.target.options(self.connect_timeout, self.persist), *extra, "--", self.target.host]

    def run(self, command: str, timeout: float, stdin: Path | None = None) -> Result:
        """Run `command` with the remote user's shell.

        Raises HostKeyRejected if the guest's key is not the pinned one,
        GuestUnreachable if ssh itself failed (exit 255), StepTimeout after
        `timeout` seconds. A command's own non-zero exit is returned, not raised.
        """
        try:
            with open(stdin, "rb") if stdin else contextlib.nullcontext(subprocess.DEVNULL) as source:
                done = subprocess.run(self._argv() + [command], stdin=source, capture_output=True,
                                      timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise ProvisionError(f"{exc.filename}: not found" if exc.filename != "ssh"
                                 else "ssh not found: install openssh-client") from None
        except subprocess.TimeoutExpired:
            raise StepTimeout(f"ssh {self.target}: no answer within {timeout:.0f}s") from None
        stderr = done.stderr.decode(errors="replace").strip()
        if done.returncode == 255:
            self._refused(stderr)
        return Result(done.returncode, done.stdout, stderr)

    def download(self, command: str, write: Callable[[bytes], object], limit: int, timeout: float) -> Download:
        """Run `command` and pass its stdout to `write` chunk by chunk, at most `limit` bytes in all.

        Raises DownloadTooLarge as soon as more than `limit` bytes arrive (ssh is
        killed: nothing past the cap is read), StepTimeout after `timeout`
        seconds, and like run() on ssh's own failures.
        """
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(self._argv() + [command], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=errors)
            except FileNotFoundError:
                raise ProvisionError("ssh not found: install openssh-client") from None
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                process.kill()

            timer = threading.Timer(timeout, expire)
            timer.start()
            size = 0
            try:
                assert process.stdout is not None
                while chunk := process.stdout.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise DownloadTooLarge(f"more than {limit} bytes came from {self.target}: stopped there")
                    write(chunk)
                returncode = process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:
                    process.kill()
                    process.wait()
                process.stdout.close()  # type: ignore[union-attr]
            if expired.is_set():
                raise StepTimeout(f"ssh {self.target}: the download took longer than {timeout:.0f}s")
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
        if returncode == 255:
            self._refused(stderr)
        return Download(returncode, size, stderr)

    def _refused(self, stderr: str) -> NoReturn:
        """Raise for ssh's own failure (exit status 255)."""
        if any(marker in stderr for marker in _HOST_KEY_FAILURES):
            raise HostKeyRejected(
                f"{self.target} did not present the pinned host key for {self.target.alias!r} "
                f"(in {self.target.known_hosts}): refusing to connect. If the guest was rebuilt "
                f"outside the engine, re-provision it; never disable host key checking. ssh said: "
                f"{_last_line(stderr)}")
        raise GuestUnreachable(f"ssh {self.target}: {_last_line(stderr) or 'connection failed'}")

    def close(self) -> None:
        """Stop the multiplexing master, if one runs (it would otherwise linger until ControlPersist)."""
        control = self.target.control_path
        if control is None or not control.exists():
            return
        subprocess.run(self._argv(["-O", "exit"]), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=self.connect_timeout + 5, check=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
