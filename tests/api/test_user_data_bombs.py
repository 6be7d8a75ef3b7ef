"""Nova user_data with YAML aliases: refused by line and column, nothing expanded, nothing stored.

A ~400-byte #cloud-config of nested aliases in a wrongly typed user field was
expanded by repr() into the error body (depth 7: a 226 MB response, 1.5 GiB
RSS). The server here runs in a child process with its address space capped,
so a regression fails (MemoryError, a 500, a dropped connection) instead of
taking the machine's memory; its peak RSS (VmHWM) is read from /proc.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from apitest import Live, qcow2_file  # noqa: F401 (fixtures)
from provisioner.layout import Layout

CHILD_MEMORY = 3 << 30  # the server's address space: far above serving, far below an expanded bomb
PEAK_GROWTH = 64 << 20  # what one refused request may add to the server's peak RSS
# The server of apitest.serve_root in a process of its own, until its stdin closes.
CHILD = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.path.insert(0, {tests!r})
from apitest import serve_root
with serve_root(Path(sys.argv[1])) as live:
    print(live.url, flush=True)
    sys.stdin.read()
"""


def nested_aliases(depth: int, width: int = 9, indent: str = "      ") -> str:
    """A YAML list whose item k is `width` aliases of item k-1: the last one expands to width**depth leaves."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"{indent}- &{letters[0]} [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"{indent}- &{letters[level]} [{', '.join([f'*{letters[level - 1]}'] * width)}]")
    return "\n".join(lines) + "\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ChildServer:
    """The API in a child process: its URL, its pid, and a Live to get tokens with."""

    def __init__(self, root: Path):
        tests = str(Path(__file__).parent)
        self.process = subprocess.Popen([sys.executable, "-c", CHILD.format(limit=CHILD_MEMORY, tests=tests),
                                         str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        url = self.process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"the child server did not start ({self.process.poll()})"
        self.live = Live(Layout(root), url)

    def peak_rss(self) -> int:
        """The child's peak resident set size in bytes (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(60)


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildServer]:
    server = ChildServer(tmp_path_factory.mktemp("bombs") / "root")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def image_id(child: ChildServer, qcow2_file: Path) -> str:
    """An active image of alice's (user_data is read after the image is found)."""
    headers = {"X-Auth-Token": child.live.token("alice")}
    created = requests.post(f"{child.live.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": "bomb-base", "disk_format": "qcow2", "container_format": "bare"})
    assert created.status_code == 201, created.text
    image = created.json()["id"]
    uploaded = requests.put(f"{child.live.url}/image/v2/images/{image}/file", data=qcow2_file.read_bytes(),
                            headers={**headers, "Content-Type": "application/octet-stream"}, timeout=60)
    assert uploaded.status_code == 204, uploaded.text
    return image


def _create(child: ChildServer, image: str, name: str, user_data: str) -> requests.Response:
    return requests.post(f"{child.live.url}/compute/v2.1/servers", timeout=120,
                         headers={"X-Auth-Token": child.live.token("alice")},
                         json={"server": {"name": name, "flavorRef": "1", "imageRef": image,
                                          "user_data": b64(user_data)}})


def _stored(child: ChildServer, name: str) -> list[dict]:
    resp = requests.get(f"{child.live.url}/compute/v2.1/servers", params={"name": f"^{name}$"}, timeout=30,
                        headers={"X-Auth-Token": child.live.token("alice")})
    assert resp.status_code == 200, resp.text
    return resp.json()["servers"]


def test_an_alias_bomb_in_a_wrongly_typed_user_field_is_refused_unexpanded(child: ChildServer,
                                                                           image_id: str) -> None:
    # Nine levels of nine aliases: 9**9 (387 million) leaves once expanded.
    bomb = "#cloud-config\nusers:\n  - name: ops\n    shell:\n" + nested_aliases(9)
    assert len(bomb) < 500
    before = child.peak_rss()
    resp = _create(child, image_id, "bomb", bomb)
    assert resp.status_code == 400, resp.content[:200]
    assert len(resp.content) < 4096
    assert resp.json()["badRequest"]["message"] == (
        "server.user_data: line 5, column 9: YAML anchors (&name) are not accepted: write the value out")
    assert child.peak_rss() - before < PEAK_GROWTH
    assert _stored(child, "bomb") == []


@pytest.mark.parametrize(("name", "cloud_config", "line"), [
    # The expansion of each is well typed: it was accepted, stored and rendered (~50,000x its size).
    ("packages", "packages:\n  - &p htop\n" + "  - *p\n" * 40, "line 3, column 5: YAML anchors"),
    ("keys", "ssh_authorized_keys: &k [ssh-ed25519 AAAA]\npackages: *k\n", "line 2, column 22: YAML anchors"),
    ("users", "users:\n  - &u {name: ops, gecos: Ops}\n  - *u\n", "line 3, column 5: YAML anchors"),
    ("alias", "packages: [*nowhere]\n", "line 2, column 12: YAML aliases"),
], ids=["packages", "keys", "users", "undefined alias"])
def test_aliases_in_valid_fields_are_refused_and_nothing_is_stored(child: ChildServer, image_id: str,
                                                                   name: str, cloud_config: str, line: str) -> None:
    resp = _create(child, image_id, f"alias-{name}", "#cloud-config\n" + cloud_config)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"].startswith(f"server.user_data: {line}")
    assert _stored(child, f"alias-{name}") == []
    domains = child.live.layout.root / "domains"
    assert not domains.exists() or not any(domains.iterdir()), "a workspace was written for refused input"


@pytest.mark.parametrize(("cloud_config", "message"), [
    ("users:\n  - name: ops\n    shell: [" + ", ".join(["bash"] * 3000) + "]\n",
     "server.user_data: users[0] (ops): 'shell' must be a string, not a list"),
    ("users:\n  - name: '" + "Q" * 3000 + "'\n",
     "server.user_data: users[0]: 'name' '" + "Q" * 40 + "'… is not a valid user name ([a-z_][a-z0-9_-]*, at most 32)"),
    ("users: {name: ops}\n", "server.user_data: cloud-config 'users' must be a list"),
    # Unknown top-level keys pass (cloud-init's schema allows them); unknown keys where it does not are named.
    ("write_files:\n" + "".join(f"  - {{path: /x, k{i}{'z' * 200}: 1}}\n" for i in range(100)),
     "server.user_data: cloud-config refused by cloud-init's schema: "
     + "; ".join(f"write_files[{i}]: Additional properties are not allowed ('k{i}" + "z" * 38 + "…' was unexpected)"
                 for i in range(3)) + " (and 97 more)"),
    ("packages: [0x" + "f" * 3000 + "]\n", "server.user_data: line 2, column 12: malformed YAML: the integer is out "
                                           "of range (64 bits)"),
], ids=["list for a string", "long name", "users mapping", "many unknown keys", "huge integer"])
def test_user_data_errors_name_the_field_and_cut_the_value(child: ChildServer, image_id: str,
                                                           cloud_config: str, message: str) -> None:
    resp = _create(child, image_id, "typed", "#cloud-config\n" + cloud_config)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == message
    assert len(resp.content) < 1024
