"""Rendering example.test: every artifact, deterministic, checked by real tools."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import hclparse as hcl2
import pytest
import yaml

from conftest import REPO
from provisioner.cli import main
from provisioner.spec.load import mac_for


def render(root: Path, domains: Path, name: str = "example.test") -> Path:
    assert main(["render", "--root", str(root), "--domains", str(domains), name]) == 0
    return root / "domains" / name


def test_render_writes_every_artifact(root: Path, domains: Path) -> None:
    workspace = render(root, domains)
    for rel in ("spec.json", "seed.iso", "terraform/main.tf", "cloud-init/user-data",
                "cloud-init/meta-data", "cloud-init/network-config", "keys/id_ed25519",
                "keys/ssh_host_ed25519_key"):
        assert (workspace / rel).is_file(), rel
    # Secrets are private: the seed and user-data carry the guest's host key.
    for rel in ("seed.iso", "cloud-init/user-data", "keys/id_ed25519", "keys/ssh_host_ed25519_key"):
        assert (workspace / rel).stat().st_mode & 0o077 == 0, rel
    assert workspace.stat().st_mode & 0o077 == 0
    assert (root / "shared" / "simulator" / "terraform" / "main.tf").is_file()
    assert "filter_ref" not in (workspace / "terraform/main.tf").read_text(), "a site's NIC is not filtered"


def test_render_is_deterministic(root: Path, domains: Path, tmp_path: Path) -> None:
    first = render(root, domains)
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 0
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    # A second root with the same keys renders the same bytes (paths aside).
    other = tmp_path / "other"
    shutil.copytree(first / "keys", other / "domains" / "example.test" / "keys")
    second = render(other, domains)
    for rel in ("cloud-init/user-data", "cloud-init/meta-data", "cloud-init/network-config", "seed.iso"):
        assert (second / rel).read_bytes() == (first / rel).read_bytes(), rel


def test_input_directory_is_only_read(root: Path, domains: Path) -> None:
    from conftest import tree_digest
    before = tree_digest(domains)
    render(root, domains)
    assert tree_digest(domains) == before


def test_user_data_passes_cloud_init_schema(root: Path, domains: Path) -> None:
    workspace = render(root, domains)
    validator = shutil.which("cloud-init")
    assert validator, "cloud-init's validator is missing: run `make test` (bin/install-deps --test)"
    done = subprocess.run([validator, "schema", "--config-file", str(workspace / "cloud-init/user-data")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = yaml.safe_load((workspace / "cloud-init/user-data").read_text())
    # Things the validator does not check.
    assert (workspace / "cloud-init/user-data").read_text().startswith("#cloud-config\n")
    assert isinstance(doc["users"], list)
    known = {"hostname", "fqdn", "manage_etc_hosts", "locale", "disable_root", "users", "ssh_deletekeys",
             "ssh_genkeytypes", "ssh_keys", "package_update", "packages", "write_files", "runcmd", "final_message"}
    assert set(doc) <= known
    root_user = next(u for u in doc["users"] if u["name"] == "root")
    login = (workspace / "keys/id_ed25519.pub").read_text().strip()
    assert root_user["ssh_authorized_keys"] == [login]
    host = (workspace / "keys/ssh_host_ed25519_key.pub").read_text().strip()
    assert doc["ssh_keys"]["ed25519_public"] == host
    assert doc["ssh_genkeytypes"] == ["ed25519"]
    assert doc["packages"][:2] == ["at", "make"]
    assert "root: hostmaster@example.test" in doc["write_files"][0]["content"]


def test_invalid_user_data_is_caught_by_the_validator(tmp_path: Path) -> None:
    """The schema check above can fail: a wrong type is rejected."""
    bad = tmp_path / "bad"
    bad.write_text("#cloud-config\nmanage_etc_hosts: [1, 2]\nssh_genkeytypes: 7\n")
    done = subprocess.run(["cloud-init", "schema", "--config-file", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0


def test_network_config_and_meta_data(root: Path, domains: Path) -> None:
    workspace = render(root, domains)
    net = yaml.safe_load((workspace / "cloud-init/network-config").read_text())
    assert "network" not in net and net["version"] == 2
    eth = net["ethernets"]["eth0"]
    assert eth["match"]["macaddress"] == mac_for("example.test")
    assert eth["addresses"] == ["192.0.2.10/24"]
    assert eth["gateway4"] == "192.0.2.1"
    assert eth["nameservers"] == {"search": ["example.test"], "addresses": ["192.0.2.53", "198.51.100.53"]}
    for address in eth["addresses"]:
        ipaddress.IPv4Interface(address)
    meta = yaml.safe_load((workspace / "cloud-init/meta-data").read_text())
    assert meta["local-hostname"] == "example.test"
    assert meta["instance-id"].startswith("iid-example.test-")


def test_dhcp_without_ips(root: Path, domains: Path) -> None:
    conf = domains / "example.test" / "provision.conf"
    conf.write_text("".join(l for l in conf.read_text().splitlines(True) if not l.startswith(("ips", "gateway"))))
    net = yaml.safe_load((render(root, domains) / "cloud-init/network-config").read_text())
    assert net["ethernets"]["eth0"]["dhcp4"] is True
    assert "addresses" not in net["ethernets"]["eth0"]


def test_macs_are_stable_and_all_decimal_ones_are_quoted() -> None:
    from provisioner.render.yamltext import dump
    assert mac_for("example.test") == mac_for("example.test") != mac_for("example.test2")
    decimal = "52:54:00:11:44:22"
    assert yaml.safe_load(dump({"mac": decimal})) == {"mac": decimal}


def test_install_packages_no_means_no_apt(root: Path, domains: Path) -> None:
    conf = domains / "example.test" / "provision.conf"
    conf.write_text(conf.read_text() + "install_packages = no\npackages = nginx-light\n")
    doc = yaml.safe_load((render(root, domains) / "cloud-init/user-data").read_text())
    assert "packages" not in doc and "package_update" not in doc


def test_seed_iso_opens_with_isoinfo(root: Path, domains: Path) -> None:
    iso = render(root, domains) / "seed.iso"
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    assert "Volume id: cidata" in info
    assert "Joliet" in info and "Rock Ridge" in info
    for flag in ("-J", "-R"):
        listing = subprocess.run(["isoinfo", flag, "-l", "-i", str(iso)], capture_output=True, text=True,
                                 check=True).stdout
        names = {line.split()[-1] for line in listing.splitlines() if line.startswith("-")}
        assert names == {"user-data", "meta-data", "network-config"}, (flag, listing)
    extracted = subprocess.run(["isoinfo", "-J", "-x", "/user-data", "-i", str(iso)], capture_output=True,
                               check=True).stdout
    assert extracted == (iso.parent / "cloud-init/user-data").read_bytes()


def test_plan_names_volumes_by_content(root: Path, domains: Path) -> None:
    workspace = render(root, domains)
    plan = hcl2.loads((workspace / "terraform/main.tf").read_text())
    resources = {(k, n): body for r in plan["resource"] for k, v in r.items() for n, body in v.items()}
    disk = resources[("libvirt_volume", "disk")]
    seed = resources[("libvirt_volume", "seed")]
    import hashlib
    seed_digest = hashlib.sha256((workspace / "seed.iso").read_bytes()).hexdigest()[:12]
    assert seed["name"] == f"example.test-seed-{seed_digest}.iso"
    assert disk["capacity"] == 10737418240
    assert disk["backing_store"]["path"].startswith(str(root / "pool" / "base-debian-12-genericcloud-amd64-"))
    guest = resources[("libvirt_domain", "guest")]
    assert guest["memory"] == 1024 and guest["vcpu"] == 2
    assert guest["devices"]["interfaces"][0]["mac"]["address"] == mac_for("example.test")
    cdrom = guest["devices"]["disks"][-1]
    assert cdrom["device"] == "cdrom" and cdrom["target"] == {"dev": "sda", "bus": "sata"}


def test_changed_seed_is_a_new_volume(root: Path, domains: Path) -> None:
    workspace = render(root, domains)
    first = (workspace / "terraform/main.tf").read_text()
    users = domains / "example.test" / "users.yaml"
    users.write_text(users.read_text().replace("Alice Example", "Alice Changed"))
    render(root, domains)
    second = (workspace / "terraform/main.tf").read_text()
    seed_names = [[l for l in text.splitlines() if "-seed-" in l] for text in (first, second)]
    assert seed_names[0] != seed_names[1]


def test_domain_templates_can_be_overridden(root: Path, domains: Path) -> None:
    override = domains / "example.test" / "templates" / "terraform"
    override.mkdir(parents=True)
    original = (REPO / "templates/terraform/domain.tf.j2").read_text()
    (override / "domain.tf.j2").write_text(original.replace("provisioned by provisioner", "custom template"))
    assert 'description = "custom template"' in (render(root, domains) / "terraform/main.tf").read_text()


def test_a_hand_edited_or_removed_artifact_is_rendered_again(root: Path, domains: Path) -> None:
    # render.json records the last render; a file no longer as it wrote it makes the next one render again.
    workspace = render(root, domains)
    shared_plan = root / "shared" / "simulator" / "terraform" / "main.tf"
    before = {rel: (workspace / rel).read_bytes() for rel in ("terraform/main.tf", "seed.iso")}
    before_shared = shared_plan.read_bytes()
    (workspace / "terraform/main.tf").write_text("# edited by hand\n")
    (workspace / "seed.iso").unlink()
    shared_plan.write_text("# edited by hand\n")
    render(root, domains)
    assert {rel: (workspace / rel).read_bytes() for rel in before} == before
    assert shared_plan.read_bytes() == before_shared
    (workspace / "render.json").write_text("{not json")  # a damaged record: render again, record again
    (workspace / "cloud-init/user-data").chmod(0o644)
    render(root, domains)
    assert (workspace / "cloud-init/user-data").stat().st_mode & 0o777 == 0o600
    assert set(json.loads((workspace / "render.json").read_text())["files"]) == {
        "spec.json", "cloud-init/user-data", "cloud-init/meta-data", "cloud-init/network-config", "seed.iso",
        "terraform/main.tf"}


def test_a_changed_override_template_is_rendered_again(root: Path, domains: Path) -> None:
    plan = render(root, domains) / "terraform/main.tf"
    assert "custom template" not in plan.read_text()
    override = domains / "example.test" / "templates" / "terraform" / "domain.tf.j2"
    override.parent.mkdir(parents=True)
    original = (REPO / "templates/terraform/domain.tf.j2").read_text()
    for words in ("custom template", "cuztom template"):  # the second edit keeps the size (and maybe the mtime)
        override.write_text(original.replace("provisioned by provisioner", words))
        render(root, domains)
        assert f'description = "{words}"' in plan.read_text()
    override.unlink()
    render(root, domains)
    assert "provisioned by provisioner" in plan.read_text()


def test_built_in_templates_are_compiled_once_and_never_for_the_sandbox(root: Path, domains: Path) -> None:
    cache = root / "cache" / "templates"
    plan = render(root, domains) / "terraform/main.tf"
    compiled = list(cache.iterdir())
    assert len(compiled) == 1 and cache.stat().st_mode & 0o777 == 0o700
    assert compiled[0].stat().st_mode & 0o777 == 0o600
    first = plan.read_bytes()
    plan.unlink()  # rendered again from the compiled template: the same bytes
    render(root, domains)
    assert plan.read_bytes() == first and list(cache.iterdir()) == compiled
    # A domain with a templates/ folder renders in the sandbox, whose compiled code is its own: none is kept.
    shutil.rmtree(cache)
    override = domains / "example.test" / "templates" / "terraform" / "domain.tf.j2"
    override.parent.mkdir(parents=True)
    override.write_text((REPO / "templates/terraform/domain.tf.j2").read_text())
    plan.unlink()
    render(root, domains)
    assert plan.read_bytes() == first
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("count", [2])
def test_extra_disks(root: Path, domains: Path, count: int) -> None:
    conf = domains / "example.test" / "provision.conf"
    conf.write_text(conf.read_text() + "disks = " + ", ".join(["1073741824"] * count) + "\n")
    plan = hcl2.loads((render(root, domains) / "terraform/main.tf").read_text())
    guest = [r for r in plan["resource"] if "libvirt_domain" in r][0]["libvirt_domain"]["guest"]
    assert [d["target"]["dev"] for d in guest["devices"]["disks"]] == ["vda", "vdb", "vdc", "sda"]
