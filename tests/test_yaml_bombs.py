"""YAML from a domain directory (users.yaml) and the API's config.yaml: no alias expansion, bounded, errors by line.

PyYAML's safe_load expanded a 500-byte users.yaml of nested aliases until
MemoryError, and a 5 KB one into 151 MB of rendered files. The bombs run
through the real bin/provision in a child process whose address space is
capped, so a regression fails here instead of taking the machine's memory.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from api.config import load_config
from conftest import REPO, tree_digest
from provisioner.cli import main
from provisioner.errors import InputError

CHILD_MEMORY = 2 << 30  # address space of the child bin/provision: far above a render, far below a bomb
LEAF = "lol"


def nested_aliases(depth: int, width: int = 9, indent: str = "      ") -> str:
    """A YAML list whose item k is `width` aliases of item k-1: the last one expands to width**depth leaves."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"{indent}- &{letters[0]} [{', '.join([LEAF] * width)}]"]
    for level in range(1, depth):
        lines.append(f"{indent}- &{letters[level]} [{', '.join([f'*{letters[level - 1]}'] * width)}]")
    return "\n".join(lines) + "\n"


def bomb_users(depth: int = 9) -> str:
    """users.yaml whose one user's `shell` (a string field) is a list of nested aliases: ~500 bytes."""
    return "users:\n  - name: bob\n    shell:\n" + nested_aliases(depth)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    """The real bin/provision, in a child with its address space capped (a bomb ends in MemoryError there)."""
    return subprocess.run([str(REPO / "bin" / "provision"), *args], capture_output=True, text=True,
                          preexec_fn=_capped, timeout=300)


def test_a_users_yaml_alias_bomb_is_refused_by_line_before_anything_expands(tmp_path: Path, domains: Path) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text(bomb_users())
    assert len(users.read_bytes()) < 600
    before = tree_digest(domains)
    root = tmp_path / "root"
    done = provision("render", "--root", str(root), "--domains", str(domains), "example.test")
    assert done.returncode == 2, done.stderr[-2000:]
    # The first anchor, line 4 column 9: `      - &a [...]`.
    assert f"{users}:4:9: YAML anchors (&name) are not accepted" in done.stderr
    assert LEAF not in done.stderr and len(done.stderr) < 1000
    assert not root.exists(), "nothing may be written for bad input"
    assert tree_digest(domains) == before


def test_aliases_in_valid_fields_are_refused_too(tmp_path: Path, domains: Path) -> None:
    """Aliases whose expansion is well typed (5 KB of them rendered 151 MB): refused, nothing written."""
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN0dkx3isMvky47klZ+VCnvfUtxDAxpoWyHDLtFXb/nl bob@example.test"
    users = domains / "example.test" / "users.yaml"
    users.write_text("users:\n  - name: bob\n    ssh_authorized_keys:\n"
                     f"      - &key '{key}'\n" + "      - *key\n" * 50)
    root = tmp_path / "root"
    done = provision("render", "--root", str(root), "--domains", str(domains), "example.test")
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{users}:4:9: YAML anchors (&name) are not accepted" in done.stderr
    assert not root.exists()


# users.yaml text -> what the error says after users.yaml:LINE:COLUMN
REFUSED = [
    ("alias only", "users:\n  - name: bob\n    groups: *g\n", ":3:13: YAML aliases (*name) are not accepted"),
    ("anchor on a scalar", "users:\n  - name: &n bob\n", ":2:11: YAML anchors (&name) are not accepted"),
    ("python tag", "users:\n  - name: !!python/object/apply:os.system [id]\n", ":2:11: YAML tag "),
    ("binary tag", "users:\n  - name: bob\n    gecos: !!binary Ym9i\n", ":3:12: YAML tag 'tag:yaml.org,2002:binary'"),
    ("local tag", "users:\n  - !user {name: bob}\n", ":2:5: YAML tag '!user'"),
    ("set", "users: !!set {bob}\n", ":1:8: YAML tag 'tag:yaml.org,2002:set'"),
    ("too deep", "users: " + "[" * 40 + "]" * 40 + "\n", ":1:39: malformed YAML: nested too deeply (more than 32"),
    ("huge hex uid", "users:\n  - name: bob\n    uid: 0x" + "f" * 5000 + "\n", ":3:10: malformed YAML: the integer is out"),
    ("huge decimal uid", "users:\n  - name: bob\n    uid: " + "9" * 5000 + "\n", ":3:10: malformed YAML: the integer is out"),
    ("impossible date", "users:\n  - name: bob\n    expiredate: 2030-13-45\n", ":3:17: malformed YAML: the timestamp"),
    ("control character", "users:\n  - name: bob\n    gecos: a\x07b\n", ":3:13: malformed YAML: character #x0007"),
    ("two documents", "users: []\n---\nusers: []\n", ":2:1: malformed YAML: expected a single document"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_users_yaml_outside_plain_yaml_is_refused_by_line(tmp_path: Path, domains: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          text: str, expected: str) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text(text)
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    assert f"{users}{expected}" in err, err
    assert len(err) < 1000 and "fffff" not in err and "99999" not in err
    assert not root.exists()


def test_an_oversized_users_yaml_is_refused(tmp_path: Path, domains: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text("users:\n  - name: bob\n    gecos: '" + "x" * (1 << 20) + "'\n")
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    # read_text's own bound (256 KiB) or the loader's (1 MiB), whichever comes first
    assert f"{users}: " in err and "xxx" not in err and len(err) < 500
    assert not root.exists()


WRONG_TYPES = [
    # users.yaml entry -> what the message says (a type or a short cut, never the value's repr)
    ("shell: [" + ", ".join(["bash"] * 2000) + "]", "'shell' must be a string, not a list"),
    ("gecos: {a: " + "x" * 5000 + "}", "'gecos' must be a string, not a mapping"),
    ("lock_passwd: '" + "n" * 5000 + "'", "'lock_passwd' must be true or false, not 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'…"),
    ("uid: 4294967295", "'uid' must be a non-negative integer (at most 4294967294), not 4294967295"),
    ("uid: '١٢'", "'uid' must be a non-negative integer (at most 4294967294), not '١٢'"),
    ("expiredate: 2030-01-01", "'expiredate' must be a string (YYYY-MM-DD), not a date"),
]


@pytest.mark.parametrize(("line", "expected"), WRONG_TYPES, ids=[w[1].split()[0] for w in WRONG_TYPES])
def test_a_wrongly_typed_user_key_names_the_type_not_the_value(tmp_path: Path, domains: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               line: str, expected: str) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text(f"users:\n  - name: bob\n    {line}\n")
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    assert f"{users}: users[0] (bob): {expected}\n" in err, err
    assert len(err) < 500
    assert not root.exists()


def test_an_invalid_user_name_is_cut_in_the_message(tmp_path: Path, domains: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text("users:\n  - name: '" + "Z" * 5000 + "'\n  - name: [" + ", ".join(["x"] * 5000) + "]\n")
    assert main(["render", "--root", str(tmp_path / "root"), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    assert f"users[0]: 'name' '{'Z' * 40}'… is not a valid user name" in err and len(err) < 500
    users.write_text("users:\n  - name: [" + ", ".join(["x"] * 5000) + "]\n")
    assert main(["render", "--root", str(tmp_path / "root"), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    assert "users[0]: 'name' a list is not a valid user name" in err and len(err) < 500


def test_many_unknown_keys_are_named_a_few_at_a_time(tmp_path: Path, domains: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text("users:\n  - name: bob\n" + "".join(f"    k{i}{'y' * 100}: 1\n" for i in range(500)))
    assert main(["render", "--root", str(tmp_path / "root"), "--domains", str(domains), "example.test"]) == 2
    err = capsys.readouterr().err
    assert "users[0] (bob): unknown key(s) 'k0yyy" in err and "and 495 more" in err and len(err) < 600


def test_config_yaml_aliases_are_refused_by_line(tmp_path: Path) -> None:
    """The API's own config.yaml goes through the same loader (an admin writes it, but one loader is simpler)."""
    path = tmp_path / "config.yaml"
    path.write_text("projects:\n  - &p {name: demo}\nusers: []\nflavors: [*p]\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:2:5: YAML anchors (&name) are not accepted: write the value out"


@pytest.mark.parametrize(("conf_line", "name_of_domain"), [
    ("", "nl.test\n"),
    ('admin_user = """root\n"""', "example.test"),
], ids=["domain name", "admin_user"])
def test_a_trailing_newline_is_not_part_of_a_valid_name(tmp_path: Path, domains: Path, conf_line: str,
                                                        name_of_domain: str) -> None:
    """`^...$` let a trailing newline through: a domain 'nl.test\\n' got a workspace with a newline in its name."""
    directory = domains / name_of_domain
    if not directory.exists():
        shutil.copytree(domains / "example.test", directory)
    conf = directory / "provision.conf"
    conf.write_text(conf.read_text().replace("admin_user = root\n", conf_line + "\n"))
    root = tmp_path / "root"
    done = provision("render", "--root", str(root), "--domains", str(domains), "--", name_of_domain)
    assert done.returncode == 2, done.stderr
    assert ("domain name: 'nl.test\\n' is not a valid domain name" in done.stderr
            or "key 'admin_user'" in done.stderr), done.stderr
    assert not root.exists()


def test_a_trailing_newline_in_a_users_yaml_name_is_refused(tmp_path: Path, domains: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    users = domains / "example.test" / "users.yaml"
    users.write_text('users:\n  - name: "root\\n"\n    shell: /bin/sh\n')
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 2
    assert f"{users}: users[0]: 'name' 'root\\n' is not a valid user name" in capsys.readouterr().err
    assert not root.exists()
