"""Every attribute path in the generated plans exists in the 0.9.7 schema.

Terraform silently drops a key a nested object does not declare, so a clean
apply proves little: the plan's source is checked against the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import hclparse as hcl2
import pytest

from provisioner.cli import main
from schema_ref import READ_ONLY, REFERENCE_DIR, REQUIRED, resource_reference

META = {"depends_on", "lifecycle", "count", "for_each", "provider"}


def attribute_paths(body: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in body.items():
        if not prefix and key in META:
            continue
        path = f"{prefix}{key}"
        yield path, value
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                yield from attribute_paths(item, path + ".")


def check_plan(text: str) -> list[str]:
    problems = []
    plan = hcl2.loads(text)
    for block in plan.get("resource", []):
        for kind, named in block.items():
            reference = resource_reference(kind)
            for name, body in named.items():
                for path, value in attribute_paths(body):
                    attr = reference.get(path)
                    where = f"{kind}.{name}: {path}"
                    if attr is None:
                        problems.append(f"{where} is not in the 0.9.7 schema")
                    elif attr.kind == READ_ONLY:
                        problems.append(f"{where} is read-only")
                    elif attr.type == "Attributes List" and not isinstance(value, list):
                        problems.append(f"{where} must be a list of objects")
                    elif attr.type == "Attributes" and not isinstance(value, dict):
                        problems.append(f"{where} must be an object")
                    elif isinstance(value, dict) and not attr.nested:
                        problems.append(f"{where} is a {attr.type}, not an object")
                # Required members of every object that is present.
                for path, attr in reference.items():
                    parent = path.rpartition(".")[0]
                    if attr.kind == REQUIRED and (not parent or _present(body, parent)) \
                            and not _present(body, path):
                        problems.append(f"{kind}.{name}: required {path} is missing")
    return problems


def _present(body: dict[str, Any], path: str) -> bool:
    nodes: list[Any] = [body]
    for part in path.split("."):
        nxt = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        if not nxt:
            return False
        nodes = nxt
    return True


@pytest.fixture(scope="module", autouse=True)
def reference_present() -> None:
    assert REFERENCE_DIR.is_dir(), f"schema reference not found at {REFERENCE_DIR} (set PROVISION_SCHEMA_REF)"


def test_reference_parser_reads_known_paths() -> None:
    domain = resource_reference("libvirt_domain")
    assert domain["devices.interfaces.mac.address"].kind == REQUIRED
    assert domain["id"].type == "Number" and domain["id"].kind == READ_ONLY
    assert "devices.interfaces.type" not in domain
    assert resource_reference("libvirt_volume")["target.path"].kind == READ_ONLY


def test_checker_catches_undeclared_and_misplaced_keys() -> None:
    bad = '''
resource "libvirt_domain" "g" {
  name = "x"
  type = "qemu"
  os = { kernel_args = "console=ttyS0" }
  devices = { interfaces = [{ type = "bridge", model = { type = "virtio" } }] }
}
'''
    problems = check_plan(bad)
    assert any("os.kernel_args" in p for p in problems)
    assert any("devices.interfaces.type" in p for p in problems)


@pytest.mark.parametrize("extra", ["", "graphics = yes\ndisks = 1073741824\nnetwork = default\n"])
def test_generated_plans_match_the_schema(tmp_path: Path, domains: Path, extra: str) -> None:
    conf = domains / "example.test" / "provision.conf"
    (domains / "example.test" / "vmlinuz").write_bytes(b"kernel")
    conf.write_text(conf.read_text() + extra + ("kernel = vmlinuz\ncmdline = console=ttyS0\n" if extra else ""))
    root = tmp_path / "root"
    assert main(["render", "--root", str(root), "--domains", str(domains), "example.test"]) == 0
    plans = [root / "domains/example.test/terraform/main.tf", root / "shared/simulator/terraform/main.tf"]
    for plan in plans:
        assert check_plan(plan.read_text()) == [], plan
