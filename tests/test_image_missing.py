"""A base image whose file was deleted by hand (index.json still lists it): said so, recoverable, harmless to others.

Real files in a tmp root, the real CLI (`bin/provision`), the real terraform against the simulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from test_apply import hypervisor

from provisioner.images import ImageStore
from provisioner.layout import Layout

PROVISION = Path(__file__).resolve().parents[1] / "bin" / "provision"
# Raw disk images: a boot sector's first bytes, then content of their own.
BASE = b"\xeb\x63\x90" + os.urandom(70000)
OTHER = b"\xeb\x63\x90" + os.urandom(50000)


def cli(root: Path, domains: Path, *args: str) -> subprocess.CompletedProcess:
    """`bin/provision ARGS` over `root` and `domains`."""
    return subprocess.run([str(PROVISION), *args, "--root", str(root), "--domains", str(domains)],
                          capture_output=True, text=True, timeout=600, check=False)


def imported(root: Path, domains: Path, source: Path, name: str) -> Path:
    """Import `source` as `name` through the CLI; the version's file in the store."""
    done = cli(root, domains, "image", "import", str(source), "--name", name)
    assert done.returncode == 0, done.stderr
    return ImageStore(Layout(root)).get(name).path


def on_image(domains: Path, domain: str, image: str) -> None:
    """A copy of example.test as `domain` whose provision.conf names the imported image `image`."""
    if domain != "example.test":
        shutil.copytree(domains / "example.test", domains / domain)
    conf = domains / domain / "provision.conf"
    lines = [f"image = {image}" if line.startswith("image =") else line
             for line in conf.read_text().splitlines()]
    conf.write_text("\n".join(lines) + "\n")


def test_a_deleted_base_image_is_listed_missing_with_the_command_that_reimports_it(
        root: Path, domains: Path, tmp_path: Path) -> None:
    source = tmp_path / "src" / "base.img"
    source.parent.mkdir()
    source.write_bytes(BASE)
    path = imported(root, domains, source, "base")
    path.unlink()
    done = cli(root, domains, "image", "list")
    assert done.returncode == 0, done.stderr
    assert (f"MISSING base version 1: {path} is gone; reimport it with: "
            f"provision image import {source} --name base") in done.stdout
    done = cli(root, domains, "image", "list", "--json")
    (listed,) = json.loads(done.stdout)
    assert listed["missing"] is True
    assert [line for line in cli(root, domains, "image", "list").stdout.splitlines()
            if line.startswith("MISSING")] == [f"MISSING base version 1: {path} is gone; reimport it with: "
                                               f"provision image import {source} --name base"]


def test_a_build_on_a_deleted_image_fails_saying_which_file_is_gone_and_reimporting_recovers(
        root: Path, domains: Path, tmp_path: Path) -> None:
    source = tmp_path / "src" / "base.img"
    source.parent.mkdir()
    source.write_bytes(BASE)
    (tmp_path / "src" / "other.img").write_bytes(OTHER)
    path = imported(root, domains, source, "base")
    imported(root, domains, tmp_path / "src" / "other.img", "other")
    on_image(domains, "example.test", "base")
    on_image(domains, "other.test", "other")
    path.unlink()

    # A build on another image is unaffected.
    done = cli(root, domains, "other.test")
    assert done.returncode == 0, done.stderr
    assert "other.test" in hypervisor(root)["domains"]

    done = cli(root, domains, "example.test")
    assert done.returncode == 1
    assert done.stderr == (f"provision: error: image 'base': version 1's file {path} is gone (deleted by hand?); "
                           f"reimport it with: provision image import {source} --name base\n")
    assert "example.test" not in hypervisor(root)["domains"]
    assert not (Layout(root).domain_dir("example.test") / "terraform").exists()

    done = subprocess.run([str(PROVISION), "image", "import", str(source), "--name", "base", "--root", str(root)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("base: restored version 1's missing file (raw, 68.4 KiB, sha256 ")
    assert path.read_bytes() == BASE and (path.stat().st_mode & 0o777) == 0o400
    assert os.readlink(path.parent / "base.raw") == path.name
    (record,) = ImageStore(Layout(root)).versions("base")
    assert (record.version, record.missing) == (1, False)
    assert "MISSING" not in cli(root, domains, "image", "list").stdout

    done = cli(root, domains, "example.test")
    assert done.returncode == 0, done.stderr
    assert "example.test" in hypervisor(root)["domains"]


def test_a_reimport_with_a_digest_restores_the_file_too(root: Path, domains: Path, tmp_path: Path) -> None:
    """With every digest given matching the current version, import skips the download: not when its file is gone."""
    source = tmp_path / "src" / "base.img"
    source.parent.mkdir()
    source.write_bytes(BASE)
    path = imported(root, domains, source, "base")
    path.unlink()
    sha256 = ImageStore(Layout(root)).get("base").sha256
    done = cli(root, domains, "image", "import", str(source), "--name", "base", "--sha256", sha256)
    assert done.returncode == 0, done.stderr
    assert "restored version 1's missing file" in done.stdout
    assert path.read_bytes() == BASE
