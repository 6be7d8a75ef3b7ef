"""A domain directory is untrusted: nothing in it runs host code, reads a host file or echoes a secret.

Real files in tmp dirs and the real CLI; the apply case runs the real
terraform with the embedded provider on the simulated hypervisor.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from conftest import REPO, tree_digest
from provisioner.cli import main

SECRET = "hunter2-do-not-echo"
DOMAIN_TEMPLATE = REPO / "templates/terraform/domain.tf.j2"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A host file outside every domain directory (stands for /etc/shadow)."""
    path = tmp_path / "host" / "shadow"
    path.parent.mkdir()
    path.write_text(f"root:{SECRET}:19000:0:99999:7:::\nimage = {SECRET}\n")
    return path


def render(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["render", "--root", str(tmp_path / "root"), "--domains", str(domains), "example.test"])
    return code, capsys.readouterr().err


def refused(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str], *expected: str,
            nothing_written: bool = True) -> str:
    """Render must fail naming `expected`, echo no secret, and leave the domain directory as it was."""
    before = tree_digest(domains)
    code, err = render(tmp_path, domains, capsys)
    assert code != 0, err
    for text in expected:
        assert text in err, (text, err)
    assert SECRET not in err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert tree_digest(domains) == before
    if nothing_written:
        assert not (tmp_path / "root").exists()
    assert not (tmp_path / "root/domains/example.test/terraform/main.tf").exists()
    for path in (tmp_path / "root").rglob("*") if (tmp_path / "root").exists() else ():
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    return err


def override(domains: Path, text: str, name: str = "terraform/domain.tf.j2") -> Path:
    path = domains / "example.test" / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def with_resource(hcl: str) -> str:
    """The built-in domain template plus `hcl` at the end."""
    return DOMAIN_TEMPLATE.read_text() + "\n" + hcl + "\n"


# --- templates: the sandbox ---------------------------------------------------------------------------------

ESCAPES = {
    "mro walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals of a helper": "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "path method": "{{ (spec.input_dir / '../../host/shadow').read_text() }}",
    "dataclass method": "{{ spec.to_json() }}",
    "huge repetition": "{{ 'x' * 100000000 }}",
    "huge power": "{{ 10 ** 100000000 }}",
    "huge output": "{% for i in range(100000) %}{% for j in range(100) %}xxxxxxxxxx{% endfor %}{% endfor %}",
}


@pytest.mark.parametrize("text", ESCAPES.values(), ids=ESCAPES.keys())
def test_override_template_escape_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                             capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                             text: str) -> None:
    path = override(domains, with_resource("# " + text))
    monkeypatch.chdir(tmp_path)
    err = refused(tmp_path, domains, capsys, str(path), nothing_written=False)
    assert "template" in err
    assert not (tmp_path / "MARKER").exists() and not (domains / "MARKER").exists()


def test_override_setup_script_escape_is_refused(tmp_path: Path, domains: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest script's template renders in the same sandbox."""
    from provisioner.errors import InputError
    from provisioner.postboot.guest_script import render_setup_script
    folder = domains / "example.test" / "templates"
    override(domains, "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}", "postboot/setup.sh.j2")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="setup.sh.j2"):
        render_setup_script("example.test", folder)
    assert not (tmp_path / "MARKER").exists()


def test_benign_override_still_renders(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loops, filters, str methods and macros work in the sandbox."""
    text = DOMAIN_TEMPLATE.read_text().replace(
        '"provisioned by provisioner"',
        "{% macro d(n) %}{{ ('site ' ~ n).upper() | hcl }}{% endmacro %}{{ d(spec.name) }}")
    override(domains, text)
    code, err = render(tmp_path, domains, capsys)
    assert code == 0, err
    assert 'description = "SITE EXAMPLE.TEST"' in (tmp_path / "root/domains/example.test/terraform/main.tf").read_text()


# --- templates: the rendered plan ---------------------------------------------------------------------------

PLANS = {
    "local-exec": 'resource "libvirt_volume" "x" {\n  name = "x"\n  provisioner "local-exec" {\n'
                  '    command = "touch MARKER"\n  }\n}',
    "remote-exec in one line": 'resource "libvirt_volume" "x" { provisioner "remote-exec" { inline = ["id"] } }',
    "file provisioner": 'resource "libvirt_volume" "x" {\n  provisioner "file" {\n    source = "/etc/shadow"\n'
                        '    destination = "/tmp/x"\n  }\n}',
    "dynamic provisioner": 'resource "libvirt_volume" "x" {\n  dynamic "provisioner" {\n    for_each = [1]\n'
                           '    content {}\n  }\n}',
    "connection": 'resource "libvirt_volume" "x" {\n  connection {\n    host = "h"\n  }\n}',
    "external data": 'data "external" "x" {\n  program = ["sh", "-c", "touch MARKER"]\n}',
    "null resource": 'resource "null_resource" "x" {}',
    "terraform_data": 'resource "terraform_data" "x" {}',
    "module": 'module "m" {\n  source = "./m"\n}',
    "backend": 'terraform {\n  backend "local" {\n    path = "/etc/x"\n  }\n}',
    "other provider": 'provider "local" {}',
    "other required provider": 'terraform {\n  required_providers {\n    libvirt = {\n      source  = "evil/libvirt"\n'
                               '      version = "0.9.7"\n    }\n  }\n}',
    "extra required provider": 'terraform {\n  required_providers {\n    external = { source = "hashicorp/external" }\n'
                               '  }\n}',
    "file function": 'output "x" {\n  value = file("/etc/shadow")\n}',
    "file function in a string": 'output "x" {\n  value = "a${ upper(file("/etc/shadow")) }b"\n}',
    "templatefile in a heredoc": 'output "x" {\n  value = <<-EOT\n    a ${templatefile("/etc/x", {})}\n  EOT\n}',
    "provider function": 'output "x" {\n  value = provider::local::direxists("/")\n}',
    "another uri": 'provider "libvirt" {\n  alias = "b"\n  uri   = "qemu+ext:///system?command=/tmp/x"\n}',
    "unparseable": 'resource "libvirt_volume" "x" {\n  name = "x"\n',
}


@pytest.mark.parametrize("hcl", PLANS.values(), ids=PLANS.keys())
def test_override_plan_with_host_code_is_refused(tmp_path: Path, domains: Path,
                                                 capsys: pytest.CaptureFixture[str], hcl: str) -> None:
    path = override(domains, with_resource(hcl))
    err = refused(tmp_path, domains, capsys, str(path), "main.tf line", nothing_written=False)
    assert "refused" in err


def test_override_local_exec_never_reaches_terraform(tmp_path: Path, domains: Path) -> None:
    """`bin/provision DOMAIN` (real terraform, simulator): refused before terraform runs, no marker."""
    marker = tmp_path / "MARKER"
    override(domains, with_resource(
        'resource "libvirt_volume" "x" {\n  name = "x"\n  pool = "provisioner"\n  capacity = 1\n'
        f'  provisioner "local-exec" {{\n    command = "touch {marker}"\n  }}\n}}'))
    root = tmp_path / "root"
    done = subprocess.run([str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "-q",
                           "example.test"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "domain.tf.j2" in done.stderr and "provisioner" in done.stderr
    assert not marker.exists()
    assert not (root / "domains/example.test/terraform/main.tf").exists()
    assert not (root / "domains/example.test/terraform/.terraform").exists()


# --- symlinks and paths leading out -------------------------------------------------------------------------

def link(domains: Path, name: str, target: Path) -> None:
    path = domains / "example.test" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(target)


@pytest.mark.parametrize("name", ["provision.conf", "users.yaml", "data.tar.gz"])
def test_input_symlink_leading_out_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                              capsys: pytest.CaptureFixture[str], name: str) -> None:
    link(domains, name, secret_file)
    refused(tmp_path, domains, capsys, name, "outside the domain directory")


def test_input_symlink_inside_is_fine(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = domains / "example.test"
    (directory / "conf").mkdir()
    (directory / "provision.conf").rename(directory / "conf/provision.conf")
    link(domains, "provision.conf", Path("conf/provision.conf"))
    assert render(tmp_path, domains, capsys)[0] == 0


def test_template_symlink_leading_out_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    link(domains, "templates/terraform/domain.tf.j2", secret_file)
    refused(tmp_path, domains, capsys, "domain.tf.j2", "outside the domain directory")


def test_templates_folder_symlink_leading_out_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (secret_file.parent / "terraform").mkdir()
    (secret_file.parent / "terraform/domain.tf.j2").write_text(DOMAIN_TEMPLATE.read_text() + f"# {SECRET}\n")
    link(domains, "templates", secret_file.parent)
    refused(tmp_path, domains, capsys, "templates", "outside the domain directory")


def test_template_include_leading_out_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = override(domains, with_resource('# {% include "../../../host/shadow" %}'))
    err = refused(tmp_path, domains, capsys, str(path), nothing_written=False)
    assert "template" in err


IMAGES: dict[str, Callable[[Path], str]] = {
    "absolute host file": lambda secret: str(secret),
    "etc shadow": lambda secret: "/etc/shadow",
    "dotdot": lambda secret: "../../host/shadow",
    "symlink inside leading out": lambda secret: "disk.img",
}


@pytest.mark.parametrize("value", IMAGES.values(), ids=IMAGES.keys())
def test_image_outside_the_domain_directory_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       value: Callable[[Path], str]) -> None:
    link(domains, "disk.img", secret_file)
    conf = domains / "example.test" / "provision.conf"
    conf.write_text(conf.read_text().replace("image = https://", "# image = https://") + f"image = {value(secret_file)}\n")
    refused(tmp_path, domains, capsys, "provision.conf", "'image'", "PROVISION_IMAGE_DIRS")


@pytest.mark.parametrize("key", ["kernel", "initrd"])
def test_boot_file_outside_the_domain_directory_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                           capsys: pytest.CaptureFixture[str], key: str) -> None:
    conf = domains / "example.test" / "provision.conf"
    (domains / "example.test" / "vmlinuz").write_bytes(b"kernel")
    conf.write_text(conf.read_text() + f"kernel = vmlinuz\n{key} = ../../host/shadow\n")
    refused(tmp_path, domains, capsys, "provision.conf", f"'{key}'")


def raw_image(path: Path) -> Path:
    path.write_bytes(b"\0" * 65536)
    return path


def test_image_inside_the_domain_directory_or_an_allowed_directory(
        tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    conf = domains / "example.test" / "provision.conf"
    base = conf.read_text().replace("image = https://", "# image = https://")
    raw_image(domains / "example.test" / "disk.img")
    conf.write_text(base + "image = disk.img\n")
    assert render(tmp_path, domains, capsys)[0] == 0

    allowed = tmp_path / "images"
    allowed.mkdir()
    raw_image(allowed / "shared.img")
    conf.write_text(base + f"image = {allowed / 'shared.img'}\n")
    assert render(tmp_path, domains, capsys)[0] != 0
    monkeypatch.setenv("PROVISION_IMAGE_DIRS", f"/nonexistent:{allowed}")
    code, err = render(tmp_path, domains, capsys)
    assert code == 0, err
    monkeypatch.setenv("PROVISION_IMAGE_DIRS", "relative/dir")
    code, err = render(tmp_path, domains, capsys)
    assert code != 0 and "PROVISION_IMAGE_DIRS" in err


def test_declared_qcow2_with_a_backing_file_is_refused(tmp_path: Path, domains: Path, secret_file: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """image_format = qcow2 skipped the header check: qemu would then open the backing host file."""
    directory = domains / "example.test"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret_file),
                    str(directory / "disk.qcow2"), "1M"], check=True)
    conf = directory / "provision.conf"
    conf.write_text(conf.read_text().replace("image = https://", "# image = https://")
                    + "image = disk.qcow2\nimage_format = qcow2\n")
    refused(tmp_path, domains, capsys, "provision.conf", "backing file")


@pytest.mark.parametrize("uri", ["qemu+ext:///system?command=/tmp/x", "qemu+ssh://h/system?command=/tmp/x",
                                 "qemu+ssh://h/system?keyfile=/etc/shadow", "test:///etc/shadow"])
def test_domain_libvirt_uri_running_host_code_is_refused(tmp_path: Path, domains: Path,
                                                         capsys: pytest.CaptureFixture[str], uri: str) -> None:
    conf = domains / "example.test" / "provision.conf"
    conf.write_text(conf.read_text() + f"libvirt_uri = {uri}\n")
    refused(tmp_path, domains, capsys, "provision.conf", "'libvirt_uri'")


# --- file content never echoed, sizes bounded ---------------------------------------------------------------

MALFORMED = {
    "not a pair": f"image = https://h/i.qcow2\nthis is {SECRET}\n",
    "unbalanced quote": f'image = https://h/i.qcow2\npassword = "{SECRET}\n',
    "multiline": f'image = https://h/i.qcow2\ncmdline = """{SECRET}\n',
    "duplicate": f"image = https://h/i.qcow2\nimage = {SECRET}\n",
    "section": f"image = https://h/i.qcow2\n[{SECRET}\n",
    "long value": f"image = https://h/i.qcow2\nmemory = abcdefghijklmnopqrstuvwxyzabcdefghijklmn{SECRET}\n",
    "long key": f"image = https://h/i.qcow2\nabcdefghijklmnopqrstuvwxyzabcdefghijklmn{SECRET} = 1\n",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_provision_conf_never_echoes_the_line(tmp_path: Path, domains: Path,
                                                        capsys: pytest.CaptureFixture[str], text: str) -> None:
    (domains / "example.test" / "provision.conf").write_text(text)
    refused(tmp_path, domains, capsys, "provision.conf")


@pytest.mark.parametrize("name,size", [("provision.conf", 64 * 1024 + 1), ("users.yaml", 256 * 1024 + 1)])
def test_oversized_input_is_refused_before_parsing(tmp_path: Path, domains: Path,
                                                   capsys: pytest.CaptureFixture[str], name: str, size: int) -> None:
    path = domains / "example.test" / name
    text = path.read_text()
    path.write_text(text + "#" * (size - len(text.encode())))
    refused(tmp_path, domains, capsys, name, "KiB")


def test_fifo_input_is_refused_without_blocking(tmp_path: Path, domains: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (domains / "example.test" / "users.yaml").unlink()
    os.mkfifo(domains / "example.test" / "users.yaml")
    refused(tmp_path, domains, capsys, "users.yaml", "not a regular file")


def tar_gz(path: Path, members: list[tuple[str, int]]) -> None:
    """A data.tar.gz whose members are (name, size) files of zeros, written streaming (sizes may be large)."""
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, _Zeros(size))


class _Zeros(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_archive_member_count_is_bounded(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tar_gz(domains / "example.test/data.tar.gz", [("Makefile", 10)] + [(f"f{i}", 0) for i in range(50)])
    monkeypatch.setenv("PROVISION_ARCHIVE_MAX_MEMBERS", "50")
    refused(tmp_path, domains, capsys, "data.tar.gz", "more than 50 members")
    monkeypatch.setenv("PROVISION_ARCHIVE_MAX_MEMBERS", "51")
    assert render(tmp_path, domains, capsys)[0] == 0


def test_archive_expanded_size_is_bounded(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A gzip bomb stops at the limit: the 64 MiB member is never fully decompressed."""
    tar_gz(domains / "example.test/data.tar.gz", [("Makefile", 10), ("zeros", 64 << 20)])
    monkeypatch.setenv("PROVISION_ARCHIVE_MAX_BYTES", str(1 << 20))
    refused(tmp_path, domains, capsys, "data.tar.gz", "expands to more than 1048576 bytes")
    monkeypatch.setenv("PROVISION_ARCHIVE_MAX_BYTES", str(65 << 20))
    assert render(tmp_path, domains, capsys)[0] == 0


def test_template_overrides_can_be_turned_off(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    override(domains, DOMAIN_TEMPLATE.read_text())
    monkeypatch.setenv("PROVISION_TEMPLATE_OVERRIDES", "no")
    refused(tmp_path, domains, capsys, "templates", "PROVISION_TEMPLATE_OVERRIDES=no")


@pytest.mark.parametrize("name", ["provision.conf", "users.yaml", "templates"])
def test_symlink_loop_is_refused(tmp_path: Path, domains: Path, capsys: pytest.CaptureFixture[str],
                                 name: str) -> None:
    directory = domains / "example.test"
    (directory / name).unlink(missing_ok=True)
    (directory / "loop").symlink_to(name)
    (directory / name).symlink_to("loop")
    refused(tmp_path, domains, capsys, name, "symlink loop")


def test_archive_swapped_for_a_symlink_after_loading_is_refused(tmp_path: Path, domains: Path,
                                                               secret_file: Path) -> None:
    """The post-boot snapshot reads data.tar.gz again: a symlink swapped in since the load must not leak a host file."""
    from provisioner.errors import InputError
    from provisioner.layout import Layout
    from provisioner.postboot.schedule import stage_site
    from provisioner.spec.load import load_domain
    spec = load_domain("example.test", domains, Layout(tmp_path / "root"))
    link(domains, "data.tar.gz", secret_file)
    workspace = tmp_path / "workspace"
    with pytest.raises(InputError, match="outside the domain directory"):
        stage_site(spec, workspace)
    assert not (workspace / "postboot/data.tar.gz").exists()
