"""Every bad input: a clear error naming file and key/line, non-zero exit, nothing written."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from conftest import tree_digest
from provisioner.cli import main

Mutation = Callable[[Path], None]


def conf_set(line: str) -> Mutation:
    def mutate(d: Path) -> None:
        conf = d / "provision.conf"
        key = line.split("=", 1)[0].strip()
        kept = [l for l in conf.read_text().splitlines() if l.split("=", 1)[0].strip() != key]
        conf.write_text("\n".join(kept + [line]) + "\n")
    return mutate


def conf_drop(key: str) -> Mutation:
    def mutate(d: Path) -> None:
        conf = d / "provision.conf"
        conf.write_text("".join(l for l in conf.read_text().splitlines(True) if not l.startswith(key)))
    return mutate


def write(name: str, content: str | bytes) -> Mutation:
    def mutate(d: Path) -> None:
        (d / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return mutate


def archive(*members: tarfile.TarInfo | tuple[str, bytes], gz: bool = True) -> Mutation:
    def mutate(d: Path) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
            for member in members:
                if isinstance(member, tuple):
                    info = tarfile.TarInfo(member[0])
                    info.size = len(member[1])
                    tar.addfile(info, io.BytesIO(member[1]))
                else:
                    tar.addfile(member)
        (d / "data.tar.gz").write_bytes(buf.getvalue())
    return mutate


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


MAKEFILE = ("Makefile", b"all:\n\ttrue\n")

CASES: list[tuple[str, Mutation, list[str]]] = [
    ("unknown key", conf_set("colour = blue"), ["provision.conf", "unknown key 'colour'"]),
    ("missing image", conf_drop("image"), ["provision.conf", "missing required key 'image'"]),
    ("ips without gateway", conf_drop("gateway"), ["provision.conf", "'gateway' is required"]),
    ("bad ip", conf_set("ips = 10.0.0.300"), ["provision.conf", "'ips'", "10.0.0.300"]),
    ("bad prefix", conf_set("ips = 10.0.0.3/33"), ["provision.conf", "'ips'", "prefix"]),
    ("bad gateway", conf_set("gateway = 10.0.0"), ["provision.conf", "'gateway'"]),
    ("bad resolver", conf_set("resolvers = 1.1.1.1, dns.example"), ["provision.conf", "'resolvers'", "dns.example"]),
    ("size zero", conf_set("size = 0"), ["provision.conf", "'size'", "positive integer"]),
    ("size text", conf_set("size = 10G"), ["provision.conf", "'size'"]),
    ("memory negative", conf_set("memory = -5"), ["provision.conf", "'memory'"]),
    ("cpus float", conf_set("cpus = 1.5"), ["provision.conf", "'cpus'"]),
    ("bad email", conf_set("contact_email = not-an-address"), ["provision.conf", "'contact_email'"]),
    ("image missing file", conf_set("image = /nonexistent/disk.qcow2"), ["provision.conf", "'image'", "neither"]),
    ("image ftp", conf_set("image = ftp://host/disk.qcow2"), ["provision.conf", "'image'"]),
    ("bad digest", conf_set("image_digests = sha256:xyz"), ["provision.conf", "'image_digests'", "64 hex"]),
    ("unknown digest", conf_set("image_digests = crc32:abcd"), ["provision.conf", "'image_digests'", "crc32"]),
    ("bad admin user", conf_set("admin_user = Root;rm"), ["provision.conf", "'admin_user'"]),
    ("bad package", conf_set("packages = vim, $(reboot)"), ["provision.conf", "'packages'"]),
    ("duplicate key", write("provision.conf", "image = https://h/i.qcow2\nimage = https://h/j.qcow2\n"),
     ["provision.conf:2", "Duplicate"]),
    ("garbage line", write("provision.conf", "image = https://h/i.qcow2\nthis is not a pair\n"),
     ["provision.conf:2"]),
    ("section", write("provision.conf", "image = https://h/i.qcow2\n[extra]\nx = 1\n"), ["provision.conf", "section"]),
    ("not utf-8", write("provision.conf", b"image = \xff\n"), ["provision.conf", "UTF-8"]),
    ("newline value", write("provision.conf", 'image = https://h/i.qcow2\ncmdline = """a\nb"""\nkernel = x\n'),
     ["provision.conf", "control character"]),
    ("depends on itself", conf_set("depends_on = example.test"), ["provision.conf", "'depends_on'"]),
    ("depends on missing", conf_set("depends_on = other.test"), ["provision.conf", "'depends_on'", "other.test"]),
    ("depends on bad name", conf_set("depends_on = ../etc"), ["provision.conf", "'depends_on'"]),
    ("malformed yaml", write("users.yaml", "users:\n  - name: a\n    bad: [unclosed\n"), ["users.yaml:"]),
    ("users not a list", write("users.yaml", "users: notalist\n"), ["users.yaml", "must be a list"]),
    ("no users key", write("users.yaml", "people: []\n"), ["users.yaml", "users:"]),
    ("yaml not mapping", write("users.yaml", "- a\n- b\n"), ["users.yaml", "users:"]),
    ("bad user name", write("users.yaml", "users:\n  - name: 'x; rm -rf /'\n"), ["users.yaml", "users[0]"]),
    ("unknown user key", write("users.yaml", "users:\n  - name: bob\n    shel: /bin/sh\n"), ["users.yaml", "shel"]),
    ("user keys not a list", write("users.yaml", "users:\n  - name: bob\n    ssh_authorized_keys: ssh-ed25519 AAAA\n"),
     ["users.yaml", "users[0] (bob)", "'ssh_authorized_keys' must be a list of strings"]),
    ("user shell not a string", write("users.yaml", "users:\n  - name: bob\n    shell: [bash]\n"),
     ["users.yaml", "users[0] (bob)", "'shell' must be a string"]),
    ("user lock_passwd not a boolean", write("users.yaml", "users:\n  - name: bob\n    lock_passwd: 'no'\n"),
     ["users.yaml", "'lock_passwd' must be true or false"]),
    ("user uid negative", write("users.yaml", "users:\n  - name: bob\n    uid: -1\n"),
     ["users.yaml", "'uid' must be a non-negative integer"]),
    ("user sudo true", write("users.yaml", "users:\n  - name: bob\n    sudo: true\n"),
     ["users.yaml", "'sudo' must be a string, a list of strings, null or false"]),
    ("missing users.yaml", lambda d: (d / "users.yaml").unlink(), ["users.yaml", "not found"]),
    ("missing provision.conf", lambda d: (d / "provision.conf").unlink(), ["provision.conf", "not found"]),
    ("archive not gzip", write("data.tar.gz", b"plain text"), ["data.tar.gz", "gzip"]),
    ("archive plain tar", archive(MAKEFILE, gz=False), ["data.tar.gz", "gzip"]),
    ("archive no makefile", archive(("site/index.html", b"x")), ["data.tar.gz", "no Makefile"]),
    ("archive nested makefile", archive(("sub/Makefile", b"all:\n")), ["data.tar.gz", "no Makefile"]),
    ("archive absolute", archive(MAKEFILE, ("/etc/passwd", b"x")), ["data.tar.gz", "/etc/passwd", "absolute"]),
    ("archive dotdot", archive(MAKEFILE, ("a/../../x", b"x")), ["data.tar.gz", "'..'"]),
    ("archive symlink out", archive(MAKEFILE, special("l", tarfile.SYMTYPE, "../../etc")), ["data.tar.gz", "symlink"]),
    ("archive symlink abs", archive(MAKEFILE, special("l", tarfile.SYMTYPE, "/etc/shadow")), ["data.tar.gz", "symlink"]),
    ("archive hardlink out", archive(MAKEFILE, special("h", tarfile.LNKTYPE, "../x")), ["data.tar.gz", "hard link"]),
    ("archive device", archive(MAKEFILE, special("dev", tarfile.CHRTYPE)), ["data.tar.gz", "device"]),
    ("archive fifo", archive(MAKEFILE, special("p", tarfile.FIFOTYPE)), ["data.tar.gz", "device or special"]),
    ("archive truncated", lambda d: (d / "data.tar.gz").write_bytes((d / "data.tar.gz").read_bytes()[:60]),
     ["data.tar.gz"]),
]


@pytest.mark.parametrize("mutate,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_domain_input(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str],
                          mutate: Mutation, expected: list[str]) -> None:
    mutate(domains / "example.test")
    before = tree_digest(domains)
    root = tmp_path / "root"
    code = main(["render", "--root", str(root), "--domains", str(domains), "example.test"])
    err = capsys.readouterr().err
    assert code != 0
    for text in expected:
        assert text in err, (text, err)
    assert not root.exists(), "nothing may be written for bad input"
    assert tree_digest(domains) == before


BAD_NAMES = ["a/b", "..", "a..b", "my domain", "x;rm", "$(id)", "{{x}}", "${x}", "Upper.test", "-lead", "trail-",
             "render", "status", "é.test", "a" * 254]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_domain_names(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    root = tmp_path / "root"
    code = main(["render", "--root", str(root), "--domains", str(domains), "--", name])
    assert code != 0
    assert "domain name" in capsys.readouterr().err
    assert not root.exists()


def test_missing_domain_directory(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "absent.test"]) != 0
    err = capsys.readouterr().err
    assert "absent.test" in err and "not found" in err
    assert not root.exists()


def test_cli_exit_status_from_a_shell(tmp_path: Path, domains: Path) -> None:
    """bin/provision itself exits non-zero with the message on stderr."""
    import subprocess
    from conftest import REPO
    conf = domains / "example.test" / "provision.conf"
    conf.write_text(conf.read_text() + "colour = blue\n")
    done = subprocess.run([str(REPO / "bin/provision"), "render", "--root", str(tmp_path / "r"),
                           "--domains", str(domains), "example.test"], capture_output=True, text=True,
                          env={**os.environ, "PROVISION_ROOT": "/nonexistent"})
    assert done.returncode == 2
    assert "unknown key 'colour'" in done.stderr
