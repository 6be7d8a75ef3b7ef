"""Every attribute the embedded provider declares exists upstream, identically."""

from __future__ import annotations

import pytest

from provisioner.provider.resources import all_resources
from provisioner.provider.schema import LIST, Attr, walk
from provisioner.provider.servicer import PROVIDER_SCHEMA

from schema_ref import OPTIONAL, READ_ONLY, REQUIRED, parse_reference, resource_reference

_PRIMITIVE = {"string": "String", "number": "Number", "bool": "Boolean"}


def doc_type(a: Attr) -> str:
    """How tfplugindocs writes an attribute's type."""
    if a.nested is not None:
        return "Attributes List" if a.nested.mode == LIST else "Attributes"
    if isinstance(a.type, tuple):
        return f"{a.type[0].capitalize()} of {_PRIMITIVE[a.type[1]]}"
    return _PRIMITIVE[a.type]


def doc_kind(a: Attr) -> str:
    """Required / Optional (optional+computed included) / Read-Only."""
    if a.required:
        return REQUIRED
    return OPTIONAL if a.optional else READ_ONLY


SCHEMAS = {name: r.schema.attrs for name, r in all_resources().items()} | {"provider": PROVIDER_SCHEMA.attrs}


@pytest.mark.parametrize("type_name", sorted(SCHEMAS))
def test_declared_attributes_match_reference(type_name: str) -> None:
    ref = resource_reference(type_name)
    problems = []
    for path, attr in walk(SCHEMAS[type_name]):
        want = ref.get(path)
        if want is None:
            problems.append(f"{path}: not in the 0.9.7 reference")
            continue
        if doc_type(attr) != want.type:
            problems.append(f"{path}: type {doc_type(attr)!r}, reference says {want.type!r}")
        if doc_kind(attr) != want.kind:
            problems.append(f"{path}: {doc_kind(attr)}, reference says {want.kind}")
    assert not problems, "\n".join(problems)


def test_required_reference_members_of_declared_objects_are_declared() -> None:
    # A nested object we declare must carry every member the reference
    # requires in it, or a valid upstream plan would fail on our provider.
    missing = []
    for type_name, attrs in SCHEMAS.items():
        ref = resource_reference(type_name)
        declared = {p for p, _ in walk(attrs)}
        parents = {""} | {p for p, a in walk(attrs) if a.nested is not None}
        for path, r in ref.items():
            parent = path.rpartition(".")[0]
            if r.kind == REQUIRED and parent in parents and path not in declared:
                missing.append(f"{type_name}: {path}")
    assert not missing, missing


def test_parser_reads_top_level_and_nested_sections() -> None:
    text = """# x
## Example Usage
- `bogus` (String) not schema
## Schema

### Required

- `name` (String) The name.

### Optional

- `target` (Attributes) (see below)
- `memory` (Number) Maximum memory
See: <https://example>

### Read-Only

- `id` (Number) The ID.

<a id="nestedatt--target"></a>
### Nested Schema for `target`

Required:

- `format` (Attributes List) (see below)

Read-Only:

- `path` (String) Path
"""
    ref = parse_reference(text)
    assert {p: (r.type, r.kind) for p, r in ref.items()} == {
        "name": ("String", REQUIRED), "target": ("Attributes", OPTIONAL), "memory": ("Number", OPTIONAL),
        "id": ("Number", READ_ONLY), "target.format": ("Attributes List", REQUIRED),
        "target.path": ("String", READ_ONLY),
    }


def test_reference_facts_the_plans_rely_on() -> None:
    domain = resource_reference("libvirt_domain")
    assert "devices.interfaces.type" not in domain
    assert domain["id"].type == "Number" and domain["id"].kind == READ_ONLY
    assert domain["os.boot_devices"].type == "Attributes List"
    assert domain["os.cmdline"].type == "String" and "os.kernel_args" not in domain
    volume = resource_reference("libvirt_volume")
    assert volume["target.path"].kind == READ_ONLY and volume["create.content.url"].kind == REQUIRED
