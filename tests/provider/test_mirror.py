"""Installing the provider into a filesystem mirror, and the upstream switch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provisioner.provider.mirror import EXECUTABLE, install_mirror, write_upstream_cliconfig

EXE_REL = Path("mirror/registry.terraform.io/dmacvicar/libvirt/0.9.7/linux_amd64") / EXECUTABLE


def test_install_is_idempotent_and_byte_stable(tmp_path: Path) -> None:
    config = install_mirror(tmp_path)
    assert config == tmp_path / "terraformrc"
    exe = tmp_path / EXE_REL
    first = (exe.read_bytes(), config.read_bytes(), exe.stat().st_mtime_ns, config.stat().st_mtime_ns)
    assert os.access(exe, os.X_OK)
    assert install_mirror(tmp_path) == config
    again = (exe.read_bytes(), config.read_bytes(), exe.stat().st_mtime_ns, config.stat().st_mtime_ns)
    assert again == first  # not even rewritten: the lock file hashes the mirror

    text = config.read_text()
    assert f'path    = "{tmp_path / "mirror"}"' in text
    assert 'include = ["registry.terraform.io/dmacvicar/libvirt"]' in text
    assert 'exclude = ["registry.terraform.io/dmacvicar/libvirt"]' in text
    script = exe.read_text()
    assert f"exec '{os.path.abspath(sys.executable)}' -P -m provisioner.provider" in script


def test_wrapper_runs_from_any_directory(tmp_path: Path) -> None:
    install_mirror(tmp_path)
    (tmp_path / "provisioner").mkdir()  # must not shadow the real package
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_PLUGIN_MAGIC_COOKIE")}
    proc = subprocess.run([str(tmp_path / EXE_REL)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=30)
    # Not started by terraform: it says what it is and exits 1 (no traceback).
    assert proc.returncode == 1
    assert "libvirt provider for Terraform" in proc.stderr and "Traceback" not in proc.stderr


def test_upstream_cliconfig_installs_directly(tmp_path: Path) -> None:
    path = write_upstream_cliconfig(tmp_path)
    assert path.is_absolute() and path.parent == tmp_path
    text = path.read_text()
    assert "provider_installation" in text and "direct {}" in text
    assert "filesystem_mirror" not in text and "dev_overrides" not in text
    assert write_upstream_cliconfig(tmp_path) == path and path.read_text() == text
