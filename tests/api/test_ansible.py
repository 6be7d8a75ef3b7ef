"""Ansible's openstack.cloud modules (collection 2.5.0) create and delete against the API.

They run from their own venv, `.venv-ansible` (`make test-deps` builds it): the
collection needs openstacksdk < 4.15, older than the one the other tests pin.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.images import ImageStore
from provisioner.provider.simulator import open_readonly
from provisioner.volumes import volume_dir, volume_name

from apitest import ACCOUNTS, PASSWORD, live, qcow2_file  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-ansible"
PLAYBOOKS = Path(__file__).parent / "playbooks"


class Ansible:
    """Runs the playbooks under tests/api/playbooks as one user, with a clouds.yaml in a temp dir."""

    def __init__(self, live, user: str, home: Path):
        self.home = home
        clouds = home / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"test": {
            "auth": {"auth_url": f"{live.url}/identity", "username": user, "password": PASSWORD,
                     "project_name": ACCOUNTS[user][0], "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": "RegionOne", "identity_api_version": 3}}}))
        self.env = {"PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", "HOME": str(home),
                    "OS_CLIENT_CONFIG_FILE": str(clouds),
                    "ANSIBLE_COLLECTIONS_PATH": str(VENV / "collections"),
                    "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_LOCALHOST_WARNING": "False",
                    "ANSIBLE_PYTHON_INTERPRETER": str(VENV / "bin" / "python")}

    def play(self, playbook: str, **extra: str) -> dict[str, Any]:
        """Run `playbook` with `extra` vars; the registered result of its module task."""
        result = self.home / f"{playbook}-{extra.get('state')}.json"
        done = subprocess.run(
            [str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
             "-e", json.dumps({**extra, "result": str(result)}), str(PLAYBOOKS / playbook)],
            check=False, env=self.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{playbook} {extra} failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(result.read_text())


@pytest.fixture
def ansible(live, tmp_path: Path) -> Ansible:
    if not (VENV / ".installed").exists():
        pytest.skip("the Ansible venv is missing: `make test-deps` builds .venv-ansible")
    return Ansible(live, "alice", tmp_path)


def _domains(live) -> set[str]:
    conn = open_readonly(live.layout.simulator_uri)
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_image_upload_and_delete(live, ansible: Ansible, qcow2_file: Path) -> None:
    created = ansible.play("image.yml", state="present", name="ans-img", filename=str(qcow2_file))
    image = created["image"]
    assert created["changed"] and image["status"] == "active"
    record = ImageStore(live.layout).get_by_id(image["id"])
    assert record.path.read_bytes() == qcow2_file.read_bytes(), "the uploaded bytes are in the store"

    again = ansible.play("image.yml", state="present", name="ans-img", filename=str(qcow2_file))
    assert not again["changed"] and again["image"]["id"] == image["id"], "found by name, not uploaded twice"

    deleted = ansible.play("image.yml", state="absent", name="ans-img")
    assert deleted["changed"]
    assert image["id"] not in {r.id for r in ImageStore(live.layout).list()}


def test_server_create_and_delete(live, ansible: Ansible, qcow2_file: Path) -> None:
    ansible.play("image.yml", state="present", name="ans-srv-img", filename=str(qcow2_file))
    created = ansible.play("server.yml", state="present", name="ans-vm", image="ans-srv-img")
    server = created["server"]
    assert created["changed"] and server["status"] == "ACTIVE"
    domain = f"srv-{server['id']}"
    assert domain in _domains(live), "the engine defined the domain in the simulated libvirt"
    assert (live.layout.domain_dir(domain) / "terraform" / "terraform.tfstate").is_file()

    deleted = ansible.play("server.yml", state="absent", name="ans-vm")
    assert deleted["changed"]
    assert domain not in _domains(live)
    assert not live.layout.domain_dir(domain).exists()
    ansible.play("image.yml", state="absent", name="ans-srv-img")


def _domain_xml(live, domain: str) -> str:
    conn = open_readonly(live.layout.simulator_uri)
    try:
        return conn.lookupByName(domain).XMLDesc()
    finally:
        conn.close()


def test_volume_attach_detach_and_delete(live, ansible: Ansible, qcow2_file: Path) -> None:
    created = ansible.play("volume.yml", state="present", name="ans-vol")
    volume = created["volume"]
    assert created["changed"] and volume["status"] == "available" and volume["size"] == 1
    workspace = volume_dir(live.layout, f"vol-{volume['id']}")
    assert (workspace / "terraform" / "terraform.tfstate").is_file(), "the engine applied the volume's workspace"

    ansible.play("image.yml", state="present", name="ans-vol-img", filename=str(qcow2_file))
    server = ansible.play("server.yml", state="present", name="ans-vol-vm", image="ans-vol-img")["server"]
    domain = f"srv-{server['id']}"
    attached = ansible.play("server_volume.yml", state="present", server="ans-vol-vm", volume="ans-vol")
    assert attached["changed"] and attached["volume"]["status"] == "in-use"
    assert volume_name(f"vol-{volume['id']}") in _domain_xml(live, domain), "the domain got the volume as a disk"

    detached = ansible.play("server_volume.yml", state="absent", server="ans-vol-vm", volume="ans-vol")
    assert detached["changed"]
    assert volume_name(f"vol-{volume['id']}") not in _domain_xml(live, domain)

    deleted = ansible.play("volume.yml", state="absent", name="ans-vol")
    assert deleted["changed"] and not workspace.exists()
    ansible.play("server.yml", state="absent", name="ans-vol-vm")
    ansible.play("image.yml", state="absent", name="ans-vol-img")
