"""Nova user_data passed through: any #cloud-config cloud-init's schema accepts, merged with the engine's, and
#! scripts as a MIME multipart part; invalid, engine-owned and unsupported user data refused by name.

The rendered user-data is checked by cloud-init's own validator (`cloud-init schema`, installed by
bin/install-deps and disabled), as tests/test_render.py does.
"""

from __future__ import annotations

import base64
import email
import gzip
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from apitest import live, qcow2_file  # noqa: F401 (fixtures)
from provisioner.keys import ensure_keys
from provisioner.render.cloudinit import render_cloud_init
from provisioner.spec.cloudconfig import SCHEMA_ENV
from provisioner.spec.codec import spec_from_json

SECRET = "tenant-Secret-9f3c"
TENANT = f"""#cloud-config
packages: [htop, [curl, "7.88*"]]
runcmd:
  - [touch, /run/tenant-was-here]
  - echo tenant > /run/tenant.txt
write_files:
  - path: /etc/tenant.conf
    content: |
      colour = blue
    permissions: '0640'
package_upgrade: true
chpasswd:
  expire: false
  users:
    - {{name: ops, password: {SECRET}, type: text}}
users:
  - name: ops
    shell: /bin/bash
"""


def _headers(live) -> dict[str, str]:
    return {"X-Auth-Token": live.token("alice")}


@pytest.fixture(scope="module")
def image_id(live, qcow2_file: Path) -> str:
    headers = _headers(live)
    created = requests.post(f"{live.url}/image/v2/images", headers=headers, timeout=30, json={
        "name": "user-data-base", "disk_format": "qcow2", "container_format": "bare"})
    assert created.status_code == 201, created.text
    image = created.json()["id"]
    uploaded = requests.put(f"{live.url}/image/v2/images/{image}/file", data=qcow2_file.read_bytes(),
                            headers={**headers, "Content-Type": "application/octet-stream"}, timeout=60)
    assert uploaded.status_code == 204, uploaded.text
    return image


def _create(live, image_id: str, name: str, user_data: bytes) -> requests.Response:
    return requests.post(f"{live.url}/compute/v2.1/servers", headers=_headers(live), timeout=30, json={"server": {
        "name": name, "flavorRef": "1", "imageRef": image_id, "user_data": base64.b64encode(user_data).decode()}})


def _built(live, resp: requests.Response) -> Path:
    """The workspace of a created server, once its build has finished."""
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    for _ in range(1500):
        server = requests.get(f"{live.url}/compute/v2.1/servers/{server_id}", headers=_headers(live),
                              timeout=30).json()["server"]
        if server["status"] != "BUILD":
            break
        time.sleep(0.2)
    assert server["status"] == "ACTIVE", server.get("fault")
    return live.layout.domain_dir(f"srv-{server_id}")


def _refused(live, image_id: str, name: str, user_data: bytes) -> str:
    """The 400's message; no server of that name is stored."""
    resp = _create(live, image_id, name, user_data)
    assert resp.status_code == 400, resp.text
    assert len(resp.content) < 1024
    servers = requests.get(f"{live.url}/compute/v2.1/servers", params={"name": f"^{name}$"}, timeout=30,
                           headers=_headers(live)).json()["servers"]
    assert servers == []
    return resp.json()["badRequest"]["message"]


def _schema_check(path: Path) -> None:
    validator = shutil.which("cloud-init")
    assert validator, "cloud-init's validator is missing: run `make test` (bin/install-deps --test)"
    done = subprocess.run([validator, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# cloud-init's own user-data processor (Debian's package, run by the system python3 that has it).
PROCESS = """
import sys
from cloudinit import helpers, user_data
paths = helpers.Paths({"cloud_dir": sys.argv[2]})
message = user_data.UserDataProcessor(paths).process(open(sys.argv[1], "rb").read())
for part in message.walk():
    if part.get_content_maintype() != "multipart":
        print(part.get_content_type(), len(part.get_payload(decode=True)))
"""


def _cloud_init_parts(path: Path, scratch: Path) -> list[str]:
    """The content types cloud-init finds in a user-data file."""
    done = subprocess.run(["/usr/bin/python3", "-c", PROCESS, str(path), str(scratch)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return [line.split()[0] for line in done.stdout.splitlines()]


def _same_render(workspace: Path) -> None:
    """spec.json read back and rendered again gives the seed's user-data byte for byte."""
    spec = spec_from_json(json.loads((workspace / "spec.json").read_text()))
    again = render_cloud_init(spec, ensure_keys(workspace / "keys", spec.name)).user_data
    assert again == (workspace / "cloud-init/user-data").read_bytes()


def test_runcmd_write_files_and_packages_are_merged_with_the_engine_config(live, image_id: str) -> None:
    workspace = _built(live, _create(live, image_id, "ud-merge", TENANT.encode()))
    user_data = workspace / "cloud-init/user-data"
    _schema_check(user_data)
    doc = yaml.safe_load(user_data.read_text())
    # The engine's part
    assert doc["hostname"] == workspace.name and doc["fqdn"] == workspace.name
    assert set(doc["ssh_keys"]) >= {"ed25519_private", "ed25519_public"} and doc["ssh_deletekeys"] is True
    assert doc["final_message"].startswith("provisioner: cloud-init finished")
    admin = next(u for u in doc["users"] if isinstance(u, dict) and u["name"] == "root")
    login = (workspace / "keys/id_ed25519.pub").read_text().strip()
    assert login in [k.strip() for k in admin["ssh_authorized_keys"]]
    # The engine's packages first, the tenant's after (a version pin kept as a pair)
    assert doc["packages"][:2] == ["at", "make"] and "htop" in doc["packages"]
    assert ["curl", "7.88*"] in doc["packages"]
    # The tenant's part
    assert doc["runcmd"][-2:] == [["touch", "/run/tenant-was-here"], "echo tenant > /run/tenant.txt"]
    assert {"path": "/etc/tenant.conf", "content": "colour = blue\n", "permissions": "0640"} in doc["write_files"]
    assert doc["package_upgrade"] is True
    assert any(u.get("name") == "ops" for u in doc["users"] if isinstance(u, dict))
    # chpasswd's plain password stored as a hash only
    (entry,) = doc["chpasswd"]["users"]
    assert entry["type"] == "hash" and entry["password"].startswith("$6$")
    for rel in ("cloud-init/user-data", "spec.json"):
        assert SECRET not in (workspace / rel).read_text()
    _same_render(workspace)


def test_a_shell_script_becomes_a_multipart_part(live, image_id: str, tmp_path: Path) -> None:
    script = "#!/bin/sh\necho hello > /run/tenant-script\n"
    for name, data in (("ud-script", script.encode()), ("ud-script-gz", gzip.compress(script.encode(), mtime=0))):
        workspace = _built(live, _create(live, image_id, name, data))
        raw = (workspace / "cloud-init/user-data").read_bytes()
        message = email.message_from_bytes(raw)
        assert message.get_content_type() == "multipart/mixed"
        config, tenant = message.get_payload()
        assert config.get_content_type() == "text/cloud-config"
        assert tenant.get_content_type() == "text/x-shellscript"
        assert tenant.get_payload(decode=True).decode() == script
        extracted = workspace / "engine.cfg"
        extracted.write_bytes(config.get_payload(decode=True))
        _schema_check(extracted)
        assert yaml.safe_load(extracted.read_text())["hostname"] == workspace.name
        assert _cloud_init_parts(workspace / "cloud-init/user-data", tmp_path / name) == [
            "text/cloud-config", "text/x-shellscript"]
        _same_render(workspace)


@pytest.mark.parametrize(("name", "cloud_config", "message"), [
    ("runcmd", "runcmd: 5\n", "runcmd: 5 is not of type \"array\""),
    ("write-files", "write_files:\n  - content: '" + "Q" * 3000 + "'\n",
     "write_files[0]: \"path\" is a required property"),
    ("packages", "packages: " + "P" * 3000 + "\n", "packages: '" + "P" * 40 + "'… is not of type \"array\""),
], ids=["runcmd 5", "write_files without path", "long string for a list"])
def test_a_cloud_config_the_schema_refuses_is_a_400_naming_the_key(live, image_id: str, name: str,
                                                                    cloud_config: str, message: str) -> None:
    got = _refused(live, image_id, f"ud-bad-{name}", f"#cloud-config\n{cloud_config}".encode())
    assert got == f"server.user_data: cloud-config refused by cloud-init's schema: {message}"


@pytest.mark.parametrize(("cloud_config", "message"), [
    ("write_files: [{path: /x, content: 2030-01-01}]\n",
     "cloud-config write_files[0].content: a date is not a plain YAML value (a date? quote it)"),
    ("runcmd: [ls]\n1: one\n", "cloud-config (top level): key 1 is not a string: quote it"),
], ids=["date", "integer key"])
def test_values_spec_json_cannot_hold_are_refused_by_path(live, image_id: str, cloud_config: str,
                                                          message: str) -> None:
    got = _refused(live, image_id, "ud-plain", f"#cloud-config\n{cloud_config}".encode())
    assert got == f"server.user_data: {message}"


@pytest.mark.parametrize("cloud_config", ["hostname: evil\n", "ssh_keys: {ed25519_private: x}\n",
                                          "disable_root: true\n", "cloud_final_modules: [scripts-user]\n"])
def test_an_engine_owned_key_is_refused_by_name(live, image_id: str, cloud_config: str) -> None:
    key = cloud_config.split(":", 1)[0]
    got = _refused(live, image_id, "ud-owned", f"#cloud-config\nruncmd: [ls]\n{cloud_config}".encode())
    assert got == (f"server.user_data: cloud-config key(s) {key!r} are set by the engine (it logs in with its "
                   "own key and pins the host key it generated): leave them out")


@pytest.mark.parametrize("chpasswd", ["chpasswd: {users: [{name: root, password: x, type: text}]}\n",
                                      "chpasswd: {list: ['root:x']}\n"], ids=["users", "list"])
def test_a_password_for_the_admin_user_through_chpasswd_is_refused(live, image_id: str, chpasswd: str) -> None:
    got = _refused(live, image_id, "ud-chpasswd", f"#cloud-config\n{chpasswd}".encode())
    assert "the admin user 'root' is the engine's login" in got


@pytest.mark.parametrize("user_data", [b"#include\nhttp://127.0.0.1/cc\n", b"#cloud-boothook\necho\n",
                                       b"#cloud-config-archive\n- {type: text/x-shellscript, content: echo}\n",
                                       b" \n\t#include\nhttp://127.0.0.1/cc\n", b"## template: jinja\n#cloud-config\n"])
def test_other_user_data_formats_are_refused_with_the_rule(live, image_id: str, user_data: bytes) -> None:
    got = _refused(live, image_id, "ud-format", user_data)
    assert got.startswith("server.user_data: is not #cloud-config, a #! script or plain text not starting with #")


def test_plain_text_is_a_part_cloud_init_acts_on_in_no_way(live, image_id: str, tmp_path: Path) -> None:
    """Nova passes any user data on: text cloud-init has no handler for reaches the guest as text/plain, also
    text that looks like MIME (inside the seed's multipart it is one part's payload)."""
    for n, text in enumerate(('echo "hello world"\n', "Content-Type: multipart/mixed; boundary=x\n\n--x--\n")):
        workspace = _built(live, _create(live, image_id, f"ud-text-{n}", text.encode()))
        message = email.message_from_bytes((workspace / "cloud-init/user-data").read_bytes())
        config, tenant = message.get_payload()
        assert (config.get_content_type(), tenant.get_content_type()) == ("text/cloud-config", "text/plain")
        assert tenant.get_payload(decode=True).decode() == text
        assert _cloud_init_parts(workspace / "cloud-init/user-data", tmp_path / str(n)) == [
            "text/cloud-config", "text/plain"]
        _same_render(workspace)


def test_gzip_bombs_and_bad_gzip_are_refused(live, image_id: str) -> None:
    bomb = gzip.compress(b"#!/bin/sh\n" + b"#" * (8 << 20), mtime=0)
    assert _refused(live, image_id, "ud-bomb", bomb) == "server.user_data: expands to more than 524288 bytes"
    assert _refused(live, image_id, "ud-bad-gz", b"\x1f\x8b" + b"junk" * 10) == (
        "server.user_data: is not valid gzip data")


def test_without_cloud_inits_schema_only_self_checked_keys_pass(live, image_id: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented rule for an API host without cloud-init: the engine's own checks, no pass-through."""
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "absent.json"))
    got = _refused(live, image_id, "ud-noschema", b"#cloud-config\npackages: [htop]\nruncmd: [ls]\n")
    assert got == ("server.user_data: cloud-config key(s) 'runcmd' cannot be validated here: cloud-init's schema "
                   "is not installed on this host (install cloud-init; accepted without it: users, packages, "
                   "ssh_authorized_keys)")
    workspace = _built(live, _create(live, image_id, "ud-noschema-ok", b"#cloud-config\npackages: [htop]\n"))
    assert "htop" in yaml.safe_load((workspace / "cloud-init/user-data").read_text())["packages"]
