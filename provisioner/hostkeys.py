"""Host keys of machines the engine did not provision (`provision DOMAIN --existing`).

The key must be known before the first connection: from the operator's
known_hosts (looked up with `ssh-keygen -F`, hashed entries included) or from
a file given with `--host-key`. Nothing is ever learned on first contact.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import InputError, ProvisionError
from provisioner.postboot.address import SSH_PORT, Address

_KEY_TYPE = re.compile(r"ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+")


@dataclass(frozen=True)
class HostKeys:
    """Public host keys (`TYPE BASE64`) to pin, where they came from, and their fingerprints."""

    keys: tuple[str, ...]
    source: str
    fingerprints: tuple[str, ...]


def operator_known_hosts() -> Path:
    """The operator's own known_hosts file."""
    return Path.home() / ".ssh" / "known_hosts"


def known_hosts_name(address: Address) -> str:
    """The name known_hosts files hold for `address` (`[HOST]:PORT` off port 22)."""
    return address.host if address.port == SSH_PORT else f"[{address.host}]:{address.port}"


def host_keys_for(address: Address, host_key_file: Path | None = None,
                  known_hosts: Path | None = None) -> HostKeys:
    """The keys to pin for `address`: `host_key_file`'s, else the operator's known_hosts entries.

    Raises InputError for an unreadable or keyless --host-key file, and
    ProvisionError saying how to add the key when it is unknown.
    """
    if host_key_file is not None:
        where = f"--host-key {host_key_file}"
        try:
            text = host_key_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(where, f"cannot read it ({exc})") from None
        keys = parse_keys(text)
        if not keys:
            raise InputError(where, "holds no public key (expected `TYPE BASE64 [COMMENT]` or known_hosts lines)")
        return HostKeys(keys, str(host_key_file), tuple(fingerprint(k, where) for k in keys))
    known_hosts = known_hosts or operator_known_hosts()
    name = known_hosts_name(address)
    keys = parse_keys(_lookup(name, known_hosts)) if known_hosts.is_file() else ()
    if not keys:
        raise ProvisionError(
            f"{address}: its SSH host key is unknown ({name} is not in {known_hosts}), and an unknown key is "
            f"never accepted. Check the machine's key fingerprint out of band (on it: `ssh-keygen -lf "
            f"/etc/ssh/ssh_host_ed25519_key.pub`), compare it with `ssh-keyscan -p {address.port} {address.host} "
            f"| ssh-keygen -lf -`, then add it with `ssh-keyscan -p {address.port} {address.host} >> "
            f"{known_hosts}`, or pass the public key file with --host-key FILE")
    return HostKeys(keys, str(known_hosts), tuple(fingerprint(k, str(known_hosts)) for k in keys))


def _lookup(name: str, known_hosts: Path) -> str:
    try:
        found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(known_hosts)], capture_output=True,
                               text=True, check=False)
    except FileNotFoundError:
        raise ProvisionError("ssh-keygen not found: install openssh-client") from None
    return found.stdout if found.returncode == 0 else ""


def parse_keys(text: str) -> tuple[str, ...]:
    """`TYPE BASE64` of each key in public key or known_hosts lines.

    Comments are skipped, and so are marked lines (`@cert-authority`,
    `@revoked`): only plain keys are pinned.
    """
    keys: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", "@")):
            continue
        if not _KEY_TYPE.fullmatch(fields[0]):
            fields = fields[1:]
        if len(fields) >= 2 and _KEY_TYPE.fullmatch(fields[0]):
            keys.append(f"{fields[0]} {fields[1]}")
    return tuple(dict.fromkeys(keys))


def fingerprint(key: str, where: str) -> str:
    """`ssh-keygen -l`'s line for `key`; InputError naming `where` if it is not a valid public key."""
    try:
        done = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=key + "\n", capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:
        raise ProvisionError("ssh-keygen not found: install openssh-client") from None
    if done.returncode != 0:
        raise InputError(where, f"{key[:40]}… is not a valid public key")
    return done.stdout.strip()
