"""Values that reach the guest's shell are quoted: hostile ones are carried literally, never run.

The setup script and every command line the job sends are run here with sh,
with a domain name and job directory built to execute `touch pwned` if any
quoting were missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from loopback import EXAMPLE
from provisioner.postboot import guest_script

HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "x\ntouch pwned\n",
    "${IFS}touch${IFS}pwned",
    "-n; touch pwned #",
]


def pwned(where: Path) -> list[Path]:
    return [p for p in where.rglob("pwned*")]


@pytest.mark.parametrize("value", HOSTILE)
def test_setup_script_runs_hostile_domain_and_directory_literally(tmp_path: Path, value: str) -> None:
    job = tmp_path / ("job " + value.replace("/", "_"))
    job.mkdir()
    shutil.copy(EXAMPLE / "data.tar.gz", job / guest_script.ARCHIVE_NAME)
    script = job / guest_script.SCRIPT_NAME
    script.write_text(guest_script.render_setup_script(value))
    home = tmp_path / "home"
    home.mkdir()
    # PREFIX: as root the Makefile would install under /var/www of this host.
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PREFIX": str(home / "www/example.test")}
    subprocess.run(["/bin/sh", str(script), str(job)], cwd=tmp_path, env=env, check=True, timeout=30)
    assert (job / "exit-status").read_text() == "make 0\n"
    assert (home / "www/example.test/.provisioned").is_file()
    log = (job / "make.log").read_text()
    assert f"setting up {value} in {job}/site" in log
    assert not pwned(tmp_path)


@pytest.mark.parametrize("value", HOSTILE)
def test_command_lines_quote_hostile_paths(tmp_path: Path, value: str) -> None:
    directory = PurePosixPath(tmp_path / ("jobs " + value.replace("/", "_")))

    def sh(command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path)}
        return subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, input=stdin, env=env,
                              capture_output=True, timeout=30)

    assert sh(guest_script.state_command(directory)).stdout == b"absent\n"
    assert sh(guest_script.push_command(directory, "data.tar.gz"), b"payload").returncode == 0
    assert Path(directory, "data.tar.gz").read_bytes() == b"payload"
    assert sh(guest_script.state_command(directory)).stdout == b"new\n"
    # A fake `at` records what it would run; running that must start the script at the literal path.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "at").write_text(f"#!/bin/sh\ncat > {tmp_path}/at-input\n")
    (tmp_path / "bin" / "at").chmod(0o755)
    Path(directory, guest_script.SCRIPT_NAME).write_text('printf "%s\\n" "$0" "$1" > "$1/args"\n')
    assert sh(guest_script.submit_command(directory)).returncode == 0
    assert sh(guest_script.state_command(directory)).stdout == b"submitted\n"
    sh((tmp_path / "at-input").read_text())
    assert Path(directory, "args").read_text() == f"{directory}/setup.sh\n{directory}\n"
    Path(directory, "make.log").write_text("log\n")
    assert sh(guest_script.log_command(directory)).stdout == b"log\n"
    assert not pwned(tmp_path)


def test_state_command_tells_running_from_vanished(tmp_path: Path) -> None:
    directory = tmp_path / "job"
    directory.mkdir()
    (directory / "submitted").mkdir()

    def state() -> str:
        return subprocess.run(["/bin/sh", "-c", guest_script.state_command(PurePosixPath(directory))],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert state() == "submitted"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (directory / "started").write_text(f"{sleeper.pid}\n")
        assert state() == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert state() == "vanished"
    (directory / "exit-status").write_text("make 0\n")
    assert state() == "finished make 0"
