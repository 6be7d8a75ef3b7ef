"""Secrets at rest (issue #11 item 7): whatever the umask, everything under the root is its owner's
(directories 0700, files 0600), and a user's `plain_text_passwd` is kept nowhere under it, only the
SHA-512 crypt hash cloud-init needs.

The CLI and the API run as real processes (bin/provision, `provision serve`) started with umask 000,
on the embedded simulated hypervisor, with the real terraform.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

from conftest import REPO
from provisioner.layout import Layout
from provisioner.spec.passwords import hash_password, hash_plain_passwords, sha512_crypt, verifies

PROVISION = REPO / "bin" / "provision"
SECRET = "hunter2-secret"
IMAGE_VERSION = re.compile(r"images/[^/]+@\d{8}T\d{6}Z\.[a-z0-9]+")
# The files whose mode is not 0600: image versions are read-only, the provider's wrapper is executed.
FILE_MODES = {IMAGE_VERSION: 0o400,
              re.compile(r"terraform/mirror/registry\.terraform\.io/dmacvicar/libvirt/0\.9\.7/linux_amd64/"
                         r"terraform-provider-libvirt_v0\.9\.7"): 0o700}


def provision(root: Path, *args: str, domains: Path | None = None) -> subprocess.CompletedProcess[str]:
    """bin/provision with umask 000, as a careless operator's shell would start it."""
    argv = [str(PROVISION), "--root", str(root), *(["--domains", str(domains)] if domains else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, umask=0o000, check=False)


def openssl_sha512_crypt(password: str, salt: str) -> str:
    """The hash `openssl passwd -6` computes (an independent implementation)."""
    return subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password + "\n",
                          capture_output=True, text=True, check=True).stdout.strip()


def wrong_modes(root: Path) -> list[str]:
    """Every path under `root` (itself included) not 0700 (directory) / 0600 (file) / its FILE_MODES one."""
    wrong = []
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        relative = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            # A symlink has no mode of its own (Linux shows 0777): what it points at is checked instead.
            assert path.resolve().is_relative_to(root.resolve()), f"{relative} points outside the root"
            continue
        want = 0o700 if stat.S_ISDIR(info.st_mode) else next(
            (mode for pattern, mode in FILE_MODES.items() if pattern.fullmatch(relative)), 0o600)
        if stat.S_IMODE(info.st_mode) != want:
            wrong.append(f"{oct(stat.S_IMODE(info.st_mode))} {relative or '.'}")
    return wrong


def files_holding(root: Path, needle: bytes) -> list[str]:
    """Files under `root` whose bytes contain `needle`."""
    return [p.relative_to(root).as_posix() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def user_entry(user_data: Path, name: str) -> dict[str, object]:
    """User `name`'s entry in a rendered #cloud-config."""
    return next(u for u in yaml.safe_load(user_data.read_text())["users"] if isinstance(u, dict) and u["name"] == name)


def assert_hash_of_secret(hashed: object) -> None:
    """`hashed` is a SHA-512 crypt hash of SECRET, as openssl recomputes it from its salt."""
    assert isinstance(hashed, str) and hashed.startswith("$6$"), hashed
    salt = hashed.split("$")[2]
    assert openssl_sha512_crypt(SECRET, salt) == hashed


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path


# --- the hash itself -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["a", SECRET, "x" * 63, "x" * 64, "x" * 65, "y" * 200, "é€ ünïcode", " sp ace "])
@pytest.mark.parametrize("salt", ["s", "saltstring", "./AZaz09abcdefgh"])
def test_sha512_crypt_matches_openssl(password: str, salt: str) -> None:
    assert sha512_crypt(password, salt) == openssl_sha512_crypt(password, salt)


def test_sha512_crypt_reference_vector() -> None:
    # From the scheme's specification (Drepper, "Unix crypt using SHA-256 and SHA-512").
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1")


@pytest.mark.parametrize("salt", ["", "a" * 17, "bad$salt", "sp ace"])
def test_sha512_crypt_refuses_a_bad_salt(salt: str) -> None:
    with pytest.raises(ValueError, match="salt"):
        sha512_crypt("pw", salt)


def test_hash_plain_passwords_replaces_the_password_in_place() -> None:
    users = ({"name": "alice", "plain_text_passwd": SECRET, "lock_passwd": False}, "default", {"name": "bob"})
    alice, default, bob = hash_plain_passwords(users)
    assert list(alice) == ["name", "hashed_passwd", "lock_passwd"]
    assert_hash_of_secret(alice["hashed_passwd"])
    assert (default, bob) == ("default", {"name": "bob"})
    # Two hashes of one password differ (a random salt each), both verify; another password does not.
    again = hash_password(SECRET)
    assert again != alice["hashed_passwd"] and verifies(SECRET, again) and not verifies("hunter3", again)


def test_hash_plain_passwords_keeps_a_previous_hash_only_while_it_verifies() -> None:
    old = hash_password(SECRET)
    user = ({"name": "alice", "plain_text_passwd": SECRET},)
    assert hash_plain_passwords(user, {"alice": old})[0]["hashed_passwd"] == old
    assert hash_plain_passwords(user, {"bob": old})[0]["hashed_passwd"] != old
    changed = ({"name": "alice", "plain_text_passwd": "another-one"},)
    fresh = hash_plain_passwords(changed, {"alice": old})[0]["hashed_passwd"]
    assert fresh != old and verifies("another-one", fresh)


def test_hash_plain_passwords_follows_cloud_init_when_both_or_empty() -> None:
    # cloud-init applies hashed_passwd after plain_text_passwd, and ignores an empty plain_text_passwd.
    both = {"name": "alice", "plain_text_passwd": SECRET, "hashed_passwd": "$6$given$hash"}
    empty = {"name": "bob", "plain_text_passwd": ""}
    assert hash_plain_passwords((both, empty)) == ({"name": "alice", "hashed_passwd": "$6$given$hash"},
                                                   {"name": "bob"})


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_cli_under_umask_000_creates_everything_private(root: Path, domains: Path, qcow2: Path) -> None:
    imported = provision(root, "image", "import", str(qcow2), "--name", "tiny")
    assert imported.returncode == 0, imported.stderr
    applied = provision(root, "-q", "example.test", domains=domains)
    assert applied.returncode == 0, applied.stderr
    assert (root / "domains/example.test/terraform/terraform.tfstate").is_file()
    assert any(IMAGE_VERSION.fullmatch(p.relative_to(root).as_posix()) for p in root.rglob("*"))
    assert wrong_modes(root) == []


def test_an_existing_wide_root_is_closed_and_group_traverse_kept(tmp_path: Path) -> None:
    wide, traverse = tmp_path / "wide", tmp_path / "traverse"
    for path, mode in ((wide, 0o755), (traverse, 0o710)):
        path.mkdir()
        path.chmod(mode)
        (path / "notes").write_text("made by an older version, or by hand")
        done = provision(path, "status")
        assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(wide.stat().st_mode) == 0o700
    # 0710: the operator let the root's group (QEMU's) traverse to the pool; nothing more, so it stays.
    assert stat.S_IMODE(traverse.stat().st_mode) == 0o710


def test_users_yaml_password_is_kept_only_as_a_hash(root: Path, domains: Path) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text(users.read_text() + f"  - name: carol\n    lock_passwd: false\n    plain_text_passwd: {SECRET}\n")
    applied = provision(root, "-q", "example.test", domains=domains)
    assert applied.returncode == 0, applied.stderr
    assert SECRET not in applied.stdout + applied.stderr
    assert files_holding(root, SECRET.encode()) == []
    workspace = Layout(root).domain_dir("example.test")
    carol = user_entry(workspace / "cloud-init/user-data", "carol")
    assert "plain_text_passwd" not in carol
    assert_hash_of_secret(carol["hashed_passwd"])
    assert carol["hashed_passwd"].encode() in (workspace / "seed.iso").read_bytes()

    # Unchanged inputs render the same bytes: the hash (its salt) is kept, so the seed is not replaced.
    seed = (workspace / "seed.iso").read_bytes()
    again = provision(root, "example.test", domains=domains)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout
    assert (workspace / "seed.iso").read_bytes() == seed

    # A new password is a new hash (a new seed: its volume is replaced, which asks for --yes).
    users.write_text(users.read_text().replace(SECRET, "another-password"))
    assert provision(root, "-q", "--yes", "example.test", domains=domains).returncode == 0
    rotated = user_entry(workspace / "cloud-init/user-data", "carol")["hashed_passwd"]
    assert isinstance(rotated, str) and verifies("another-password", rotated) and not verifies(SECRET, rotated)


# --- the API ---------------------------------------------------------------------------------------------------

@contextmanager
def serving(root: Path, log: Path) -> Iterator[str]:
    """`provision serve --port 0` started with umask 000, its output in `log`; yields its base URL."""
    with log.open("w") as out:
        process = subprocess.Popen([str(PROVISION), "serve", "--root", str(root), "--port", "0", "--workers", "1"],
                                   stdout=subprocess.PIPE, stderr=out, text=True, umask=0o000,
                                   start_new_session=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = re.fullmatch(r"export OS_AUTH_URL=(http://127\.0\.0\.1:\d+)/identity\n", line)
            if found:
                yield found.group(1)
                return
        raise AssertionError(f"serve exited ({process.wait()}) without printing its URL: see {log}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def test_api_user_data_password_is_kept_only_as_a_hash(tmp_path: Path, qcow2: Path) -> None:
    root, log = tmp_path / "root", tmp_path / "serve.log"
    imported = provision(root, "image", "import", str(qcow2), "--name", "tiny")
    assert imported.returncode == 0, imported.stderr
    with serving(root, log) as url:
        password = (root / "api" / "admin-password").read_text().strip()
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        issued = requests.post(f"{url}/identity/v3/auth/tokens", json=auth, timeout=30)
        assert issued.status_code == 201, issued.text
        session = requests.Session()
        session.headers["X-Auth-Token"] = issued.headers["X-Subject-Token"]
        image = session.get(f"{url}/image/v2/images", timeout=30).json()["images"][0]["id"]
        user_data = f"#cloud-config\nusers:\n  - name: dave\n    lock_passwd: false\n    plain_text_passwd: {SECRET}\n"
        created = session.post(f"{url}/compute/v2.1/servers", timeout=30, json={"server": {
            "name": "vm", "flavorRef": "1", "imageRef": image,
            "user_data": base64.b64encode(user_data.encode()).decode()}})
        assert created.status_code == 202, created.text
        server_id = created.json()["server"]["id"]
        deadline = time.monotonic() + 300
        while (server := session.get(f"{url}/compute/v2.1/servers/{server_id}", timeout=30).json()["server"])[
                "status"] == "BUILD":
            assert time.monotonic() < deadline, "the build never finished"
            time.sleep(0.2)
        assert server["status"] == "ACTIVE", server.get("fault")

        # While the server runs: state.db's -wal and -shm are there, and are searched too.
        assert (root / "state.db-wal").exists() and (root / "state.db-shm").exists()
        assert files_holding(root, SECRET.encode()) == []
        user_data_file = Layout(root).domain_dir(f"srv-{server_id}") / "cloud-init/user-data"
        assert_hash_of_secret(user_entry(user_data_file, "dave")["hashed_passwd"])
        assert wrong_modes(root) == []
    assert SECRET.encode() not in log.read_bytes()
