"""The apply / no-op / destroy cycle on a real libvirtd (TCG), reached over qemu+ssh.

The libvirtd runs in namespaces of its own (tests/sshvirt.py): the engine runs in-process here,
so it reaches it as a separate host. The guest need not boot: its base image is a blank qcow2. Its
NIC plugs into a bridge inside the hypervisor's network namespace.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import realvirt
import sshvirt
from images.imagetest import Route, Server, server  # noqa: F401 - pytest fixture
from conftest import EXAMPLE
from provisioner.cli import main


@pytest.fixture
def real_root(real_libvirtd: sshvirt.Hypervisor) -> Iterator[Path]:
    path = realvirt.traversable_root()
    yield path
    realvirt.destroy_shared(path / "root")
    realvirt.remove(path)


def virsh(hv: sshvirt.Hypervisor, *args: str) -> str:
    """virsh on the hypervisor itself (its local socket): what libvirtd holds, whatever the engine was told."""
    return hv.run("virsh", "-c", sshvirt.LOCAL_URI, *args).stdout


def test_apply_noop_destroy_on_real_libvirt(real_libvirtd: sshvirt.Hypervisor, real_root: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    domains = real_root / "domains-in"
    directory = domains / "real.test"
    shutil.copytree(EXAMPLE, directory)
    # Inside the domain directory: a local image elsewhere needs PROVISION_IMAGE_DIRS.
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(directory / "blank.qcow2"), "64M"], check=True)
    (directory / "provision.conf").write_text(
        f"image = blank.qcow2\nips = 192.0.2.10/24\ngateway = 192.0.2.1\n"
        f"memory = 256\ncpus = 1\ndomain_type = qemu\n"
        f"bridge = {real_libvirtd.bridge}\n")
    root = real_root / "root"
    # The URI names a keyfile and an ssh command: the operator's --libvirt-uri may, a domain may not.
    args = ["--root", str(root), "--domains", str(domains), "--libvirt-uri", real_libvirtd.uri, "-q"]

    # The blank image never boots: the post-boot job is only queued (and never
    # run: it would try to reach 192.0.2.10 from the host's namespace).
    assert main([*args, "real.test", "--no-wait"]) == 0
    out = capsys.readouterr().out
    assert "created" in out and "queued" in out
    assert "running" in virsh(real_libvirtd, "domstate", "real.test")
    xml = virsh(real_libvirtd, "dumpxml", "real.test")
    assert "<memory unit='KiB'>262144</memory>" in xml and "type='qemu'" in xml
    volumes = virsh(real_libvirtd, "vol-list", "provisioner")
    assert "real.test-disk-" in volumes and "real.test-seed-" in volumes and "base-blank-" in volumes

    assert main([*args, "real.test", "--no-wait"]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main([*args, "jobs", "--json"]) == 0
    assert [job["state"] for job in json.loads(capsys.readouterr().out)] == ["queued"]  # not queued twice

    assert main([*args, "destroy", "--yes", "real.test"]) == 0
    assert "real.test" not in virsh(real_libvirtd, "list", "--all", "--name")
    volumes = virsh(real_libvirtd, "vol-list", "provisioner")
    assert "real.test-" not in volumes and "base-blank-" in volumes
    assert not (root / "domains" / "real.test").exists()
    capsys.readouterr()
    assert main([*args, "jobs", "--json"]) == 0
    assert [job["state"] for job in json.loads(capsys.readouterr().out)] == ["cancelled"]


def test_url_image_is_imported_and_verified_before_render(real_libvirtd: sshvirt.Hypervisor, real_root: Path,
                                                          server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    blank = real_root / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    content = blank.read_bytes()
    url = server.serve("/images/tiny.qcow2", Route(content))
    domains = real_root / "domains-in"
    directory = domains / "url.test"
    shutil.copytree(EXAMPLE, directory)
    root = real_root / "root"
    args = ["--root", str(root), "--domains", str(domains), "--libvirt-uri", real_libvirtd.uri, "-q"]

    def conf(digest: str) -> None:
        (directory / "provision.conf").write_text(
            f"image = {url}\nimage_digests = sha256:{digest}\nmemory = 256\ndomain_type = qemu\n"
            f"bridge = {real_libvirtd.bridge}\n")

    conf("0" * 64)
    assert main([*args, "url.test", "--no-wait"]) != 0
    assert "sha256" in capsys.readouterr().err
    assert not any((root / "images").glob("tiny@*")), "a mismatching download is not kept"
    assert "url.test" not in virsh(real_libvirtd, "list", "--all", "--name")

    conf(hashlib.sha256(content).hexdigest())
    assert main([*args, "url.test", "--no-wait"]) == 0
    capsys.readouterr()
    assert main([*args, "image", "list", "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["name"] == "tiny" and record["sha256"] == hashlib.sha256(content).hexdigest()
    spec = json.loads((root / "domains/url.test/spec.json").read_text())
    assert spec["image"]["digest"] == record["sha256"]
    assert f"base-tiny-{record['sha256'][:12]}" in virsh(real_libvirtd, "vol-list", "provisioner")
    assert main([*args, "destroy", "--yes", "url.test"]) == 0
