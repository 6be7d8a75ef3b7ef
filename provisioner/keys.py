"""Per-domain SSH keys, generated once by the engine and kept in the workspace.

- the login key: its public half is authorized for the domain's admin user;
- the guest's host key: handed to cloud-init, so the post-boot job can pin it
  instead of trusting whatever answers on first contact.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError

HOST_KEY_TYPES = ("ed25519",)


@dataclass(frozen=True)
class DomainKeys:
    """The key material rendering needs (private host key included: it goes into the seed)."""

    login_private_path: Path
    login_public: str
    host_private: dict[str, str]
    host_public: dict[str, str]


def ensure_keys(keys_dir: Path, name: str) -> DomainKeys:
    """Create the domain's keys if missing (mode 0600, dir 0700) and return them."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    login = keys_dir / "id_ed25519"
    _keygen(login, f"provisioner@{name}")
    host_private: dict[str, str] = {}
    host_public: dict[str, str] = {}
    for kind in HOST_KEY_TYPES:
        path = keys_dir / f"ssh_host_{kind}_key"
        _keygen(path, f"root@{name}", kind)
        host_private[kind] = path.read_text()
        host_public[kind] = path.with_suffix(".pub").read_text().strip()
    return DomainKeys(login, login.with_suffix(".pub").read_text().strip(), host_private, host_public)


def _keygen(path: Path, comment: str, kind: str = "ed25519") -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    tmp = path.with_name(path.name + ".new")
    for leftover in (tmp, tmp.with_name(tmp.name + ".pub")):
        leftover.unlink(missing_ok=True)
    try:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(tmp)],
            check=True, capture_output=True, text=True,
        )
    except FileNotFoundError:
        raise ProvisionError("ssh-keygen not found: install openssh-client") from None
    except subprocess.CalledProcessError as exc:
        raise ProvisionError(f"ssh-keygen failed for {path}: {exc.stderr.strip()}") from None
    os.chmod(tmp, 0o600)
    # Public half first: a private key without its .pub is regenerated next time.
    os.replace(tmp.with_name(tmp.name + ".pub"), path.with_suffix(".pub"))
    os.replace(tmp, path)
