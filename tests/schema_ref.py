"""The dmacvicar/libvirt 0.9.7 schema, read from its generated resource docs.

A copy of the upstream docs lives in docs/reference/ (PROVISION_SCHEMA_REF
overrides). Their "Schema" sections are authoritative; their examples are not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REFERENCE = Path(os.environ.get("PROVISION_SCHEMA_REF") or
                 Path(__file__).resolve().parents[1] / "docs/reference/terraform-provider-libvirt-0.9.7")
_SECTION = re.compile(r"^### Nested Schema for `([^`]+)`")
_ATTR = re.compile(r"^- `([a-z0-9_]+)` \(([^)]+)\)")
_KIND = {"Required": "required", "Optional": "optional", "Read-Only": "computed"}


@dataclass(frozen=True)
class Attr:
    """One attribute of the reference: its type text and whether it is settable."""

    type: str  # "String", "Number", "Boolean", "Attributes", "Attributes List", "List of String", …
    kind: str  # required | optional | computed

    @property
    def nested(self) -> bool:
        return self.type.startswith("Attributes")


@cache
def schema(resource: str) -> dict[str, Attr]:
    """{dotted.path: Attr} for `libvirt_<resource>` (e.g. "domain", "volume")."""
    doc = REFERENCE / f"{resource}.md"
    out: dict[str, Attr] = {}
    section: str | None = None
    kind = "optional"
    for line in doc.read_text().splitlines():
        if line.startswith("## Schema"):
            section = ""
            continue
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            continue
        label = line.strip("# :")
        if label in _KIND:
            kind = _KIND[label]
            continue
        match = _ATTR.match(line)
        if match and section is not None:
            path = f"{section}.{match.group(1)}" if section else match.group(1)
            out[path] = Attr(match.group(2), kind)
    return out
