"""bin/install-deps waits for another apt/dpkg holding the package locks instead of failing at once.

The locks are real: a child process takes an fcntl lock on the file as apt does,
and install-deps' own apt_get function (sourced from the script) runs a harmless
`apt-get check` (it takes /var/lib/dpkg/lock-frontend first, as every installing
apt-get does) or an `apt-get update` against an empty source list in a scratch
lists directory (no network).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

INSTALL_DEPS = Path(__file__).resolve().parents[1] / "bin" / "install-deps"
DPKG_ADMIN = Path("/var/lib/dpkg")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("apt-get") is None,
                                reason="the dpkg locks are root's and need apt")

# Takes an fcntl write lock on argv[1] (as apt's GetLock does), says so, holds it argv[2] seconds.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


class LockHolder:
    """A child process holding an fcntl lock on a file for a while."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "held\n"

    @property
    def pid(self) -> int:
        """The holder's process id, as install-deps should name it."""
        return self.process.pid

    def stop(self) -> None:
        """Kill the holder (a no-op once it has exited)."""
        self.process.kill()
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextlib.contextmanager
def holding(path: Path, seconds: float) -> Iterator[LockHolder]:
    """A LockHolder on `path` for at most `seconds`, killed on the way out."""
    holder = LockHolder(path, seconds)
    try:
        yield holder
    finally:
        holder.stop()


def run_apt_get(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """install-deps' apt_get function with `args`, the script sourced for its functions only."""
    environment = {**os.environ, "INSTALL_DEPS_FUNCTIONS_ONLY": "1", **(env or {})}
    return subprocess.run(["sh", "-c", '. "$0" && apt_get "$@"', str(INSTALL_DEPS), *args],
                          env=environment, capture_output=True, text=True, timeout=300, check=False)


def waiting_lines(stderr: str) -> list[str]:
    """install-deps' lines saying what it waits for."""
    return [line for line in stderr.splitlines() if line.startswith("install-deps: waiting")]


def test_apt_get_waits_for_the_dpkg_frontend_lock_and_says_once_what_for() -> None:
    with holding(DPKG_ADMIN / "lock-frontend", 2) as holder:
        done = run_apt_get("check")
        # apt-get check fails at once (exit 100, "Could not get lock") while the lock is held:
        # succeeding means it ran after the holder let go.
        assert done.returncode == 0, done.stderr
        assert holder.process.poll() is not None, "apt_get returned while the lock was still held"
        lines = waiting_lines(done.stderr)
        assert len(lines) == 1, done.stderr
        assert f"(pid {holder.pid})" in lines[0] and "/var/lib/dpkg/lock-frontend" in lines[0]
        assert "Could not get lock" not in done.stderr


def _scratch_apt(tmp_path: Path) -> dict[str, str]:
    """APT_CONFIG for an apt whose lists and caches live under tmp_path and which has no sources."""
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "lists" / "lock").touch()
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").touch()
    config = tmp_path / "apt.conf"
    config.write_text(f'Dir::State::Lists "{tmp_path}/lists/";\n'
                      f'Dir::Cache "{tmp_path}/cache/";\n'
                      f'Dir::Etc::SourceList "{tmp_path}/sources.list";\n'
                      f'Dir::Etc::SourceParts "{tmp_path}/sources.list.d";\n')
    return {"APT_CONFIG": str(config)}


def test_apt_get_update_waits_for_the_lists_lock(tmp_path: Path) -> None:
    """apt-get update takes only the lists lock, which DPkg::Lock::Timeout does not cover."""
    env = _scratch_apt(tmp_path)
    with holding(tmp_path / "lists" / "lock", 2) as holder:
        done = run_apt_get("update", "-q", env=env)
        assert done.returncode == 0, done.stderr
        assert holder.process.poll() is not None, "apt_get returned while the lock was still held"
        lines = waiting_lines(done.stderr)
        assert len(lines) == 1, done.stderr
        assert f"(pid {holder.pid})" in lines[0] and f"{tmp_path}/lists/lock" in lines[0]


def test_a_lock_held_past_the_timeout_is_an_error_naming_it_and_apt_get_never_runs() -> None:
    with holding(DPKG_ADMIN / "lock", 30) as holder:
        done = run_apt_get("check", env={"PROVISION_APT_LOCK_TIMEOUT": "1"})
        assert done.returncode == 1
        assert holder.process.poll() is None
        assert (f"install-deps: /var/lib/dpkg/lock is still locked by pid {holder.pid} after 1 s"
                in done.stderr), done.stderr
        assert "PROVISION_APT_LOCK_TIMEOUT" in done.stderr
        assert "Reading package lists" not in done.stdout


@pytest.mark.parametrize("value", ["", "ten", "-5", "1.5"])
def test_a_bad_lock_timeout_is_refused_by_name(value: str) -> None:
    done = run_apt_get("check", env={"PROVISION_APT_LOCK_TIMEOUT": value})
    assert done.returncode == 1
    assert "PROVISION_APT_LOCK_TIMEOUT must be a whole number of seconds" in done.stderr
    assert "Reading package lists" not in done.stdout
