"""Parser of the upstream provider's schema reference (tfplugindocs markdown).

The reference docs of dmacvicar/libvirt 0.9.7 list every attribute as
``- `name` (Type) description`` under "Required"/"Optional"/"Read-Only"
headings: top level under "## Schema" ("### Required" …), nested objects
under "### Nested Schema for `a.b`" ("Required:" …). `parse_reference`
turns one resource page into {dotted path: RefAttr}. Only the Schema
sections count: the Example Usage blocks use names the schema lacks.

The pages are kept in docs/reference/ (PROVISION_SCHEMA_REF overrides);
`resource_reference("libvirt_domain")` parses one resource page.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REFERENCE_DIR = Path(os.environ.get("PROVISION_SCHEMA_REF") or
                     Path(__file__).resolve().parents[1] / "docs/reference/terraform-provider-libvirt-0.9.7")

_ENTRY = re.compile(r"^- `(?P<name>[^`]+)` \((?P<type>[^)]+)\)")
_NESTED = re.compile(r"^### Nested Schema for `(?P<path>[^`]+)`")
_TOP_KIND = re.compile(r"^### (?P<kind>Required|Optional|Read-Only)\s*$")
_NESTED_KIND = re.compile(r"^(?P<kind>Required|Optional|Read-Only):\s*$")

REQUIRED, OPTIONAL, READ_ONLY = "required", "optional", "read-only"
_KINDS = {"Required": REQUIRED, "Optional": OPTIONAL, "Read-Only": READ_ONLY}


@dataclass(frozen=True)
class RefAttr:
    """One attribute of the reference: dotted path, doc type, and kind."""

    path: str
    type: str  # "String", "Number", "Boolean", "Attributes", "Attributes List", "List of String", …
    kind: str  # REQUIRED, OPTIONAL or READ_ONLY

    @property
    def nested(self) -> bool:
        """True for nested attributes (objects or lists of objects)."""
        return self.type.startswith("Attributes")


def parse_reference(text: str) -> dict[str, RefAttr]:
    """Every attribute declared in a tfplugindocs page, keyed by dotted path."""
    attrs: dict[str, RefAttr] = {}
    in_schema = False
    prefix = ""
    kind: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            in_schema = line.strip() == "## Schema"
            prefix, kind = "", None
            continue
        if not in_schema:
            continue
        if m := _NESTED.match(line):
            prefix, kind = m["path"] + ".", None
        elif m := _TOP_KIND.match(line):
            prefix, kind = "", _KINDS[m["kind"]]
        elif m := _NESTED_KIND.match(line):
            kind = _KINDS[m["kind"]]
        elif (m := _ENTRY.match(line)) and kind is not None:
            path = prefix + m["name"]
            attrs[path] = RefAttr(path, m["type"].strip(), kind)
    return attrs


@lru_cache(maxsize=None)
def resource_reference(type_name: str, reference_dir: Path = REFERENCE_DIR) -> dict[str, RefAttr]:
    """Parsed reference of `libvirt_<x>` (or "provider" for index.md)."""
    page = "index.md" if type_name == "provider" else type_name.removeprefix("libvirt_") + ".md"
    return parse_reference((reference_dir / page).read_text())
