"""A qemu+ssh hypervisor's host key is pinned (api/compute/placement.py's ssh wrapper): against a real sshd on
127.0.0.1, libvirt's ssh transport gets past host key verification with the pinned key and stops there with any
other one. No libvirtd listens behind that sshd (tests/test_sshvirt.py has real ones), so both connections end
with the hypervisor down; what differs is whether ssh logged in: libvirt's remote command runs the user's
`virt-ssh-helper`, here a stand-in in the throwaway user's ~/bin that leaves a mark (what the real helper says
when it finds no libvirtd depends on the host's /run/libvirt and D-Bus). Needs root (a throwaway user, sshd),
as tests/postboot/test_loopback.py."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from api.compute.placement import Hosts, HypervisorDown
from api.config import parse_config
from provisioner.keys import ensure_keys
from provisioner.layout import Layout

from loopback import GuestUser, Sshd, guest_user, needs_root, session_dir, domain_keys  # noqa: F401 (fixtures)
from loopback import loopback_sshd


@pytest.fixture(scope="module")
def bare_sshd(session_dir: Path, domain_keys: Path, guest_user: GuestUser) -> Iterator[Sshd]:
    """sshd alone (no atd: nothing runs behind it but the login)."""
    with loopback_sshd(session_dir, domain_keys, guest_user) as server:
        yield server


def _down_because(tmp_path: Path, sshd: Sshd, user: GuestUser, keys: Path, pinned: str) -> str:
    tmp_path.mkdir()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {pinned}\n")
    uri = f"qemu+ssh://{user.name}@127.0.0.1:{sshd.port}/system?keyfile={keys / 'id_ed25519'}"
    hosts = Hosts(parse_config({"hypervisors": [{"name": "remote", "uri": uri, "known_hosts": str(known_hosts)}]},
                               "config.yaml").hypervisors, Layout(tmp_path / "root"))
    hosts.prepare()
    with pytest.raises(HypervisorDown) as caught:
        hosts.check(hosts.hosts[0])
    return str(caught.value)


def test_the_pinned_host_key_is_required(tmp_path: Path, bare_sshd: Sshd, guest_user: GuestUser,
                                         domain_keys: Path) -> None:
    real_key = " ".join((domain_keys / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    other = tmp_path / "other"
    ensure_keys(other, "other.test")
    other_key = " ".join((other / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    helper, ran = guest_user.home / "bin" / "virt-ssh-helper", guest_user.home / "virt-ssh-helper.ran"
    helper.write_text(f"#!/bin/sh\necho \"$@\" > {ran}\nexit 1\n")
    helper.chmod(0o755)
    ran.unlink(missing_ok=True)
    try:
        # Pinned to another key, ssh stops before the login: nothing runs on the host.
        refused = _down_because(tmp_path / "wrong", bare_sshd, guest_user, domain_keys, other_key)
        assert "hypervisor remote is unreachable" in refused and not ran.exists()
        # Pinned right, ssh logs in and libvirt's helper runs there (and, a stand-in, gives up).
        accepted = _down_because(tmp_path / "right", bare_sshd, guest_user, domain_keys, real_key)
        assert "hypervisor remote is unreachable" in accepted and "qemu:///system" in ran.read_text()
    finally:
        helper.unlink(missing_ok=True)
        ran.unlink(missing_ok=True)
