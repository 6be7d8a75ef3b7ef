"""What a fresh install ran into: bin/provision from a checkout's parent, and destroy's question."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from test_apply import provision

from provisioner.layout import Layout

PROVISION = Path(__file__).resolve().parents[1] / "bin" / "provision"


def test_provision_runs_from_the_parent_of_a_checkout_named_provisioner(tmp_path: Path) -> None:
    """A `provisioner/templates/` directory in the cwd (a checkout's parent) must not shadow the package."""
    (tmp_path / "provisioner" / "templates").mkdir(parents=True)
    done = subprocess.run([str(PROVISION), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "usage: provision" in done.stdout


def _destroy_on_a_terminal(root: Path, domains: Path, name: str, answer: str) -> subprocess.CompletedProcess:
    """`bin/provision destroy NAME` with a terminal as stdin, `answer` already typed there."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode())
        return subprocess.run([str(PROVISION), "destroy", name, "--root", str(root), "--domains", str(domains)],
                              stdin=follower, capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.close(follower)
        os.close(leader)


def test_destroying_an_unknown_domain_is_an_error_before_any_question(root: Path, domains: Path) -> None:
    done = _destroy_on_a_terminal(root, domains, "nosuch.test", "y\n")
    assert done.returncode == 1
    assert "Go ahead?" not in done.stdout
    assert "no domain 'nosuch.test' under" in done.stderr and "nothing to destroy" in done.stderr


def test_destroy_asks_about_a_vms_resources_and_no_keeps_everything(root: Path, domains: Path) -> None:
    assert provision(root, domains, "example.test") == 0
    done = _destroy_on_a_terminal(root, domains, "example.test", "n\n")
    assert done.returncode == 1
    assert "destroy domain example.test: its VM's resources (guest, disks, seed) and its workspace" in done.stdout
    assert "layered" not in done.stdout
    assert (Layout(root).domain_dir("example.test") / "terraform" / "main.tf").is_file()
