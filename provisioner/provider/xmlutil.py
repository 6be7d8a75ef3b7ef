"""Tiny ElementTree helpers for building and reading libvirt XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def sub(parent: ET.Element, tag: str, text: Any = None, **attrs: Any) -> ET.Element:
    """Append a child; attributes whose value is None are left out."""
    el = ET.SubElement(parent, tag, {k: _fmt(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = _fmt(text)
    return el


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def get(el: ET.Element | None, path: str, attr: str | None = None) -> str | None:
    """Text (or attribute `attr`) of the first element at `path`, else None."""
    if el is None:
        return None
    found = el if path in ("", ".") else el.find(path)
    if found is None:
        return None
    if attr is None:
        return found.text.strip() if found.text and found.text.strip() else None
    return found.get(attr)


def get_int(el: ET.Element | None, path: str, attr: str | None = None) -> int | None:
    """Like `get`, as an int."""
    v = get(el, path, attr)
    return int(v) if v is not None else None


def yes_no(v: str | None) -> bool | None:
    """libvirt's yes/no (and on/off) attribute as a bool."""
    if v is None:
        return None
    return v in ("yes", "on", "true", "1")


def to_string(el: ET.Element) -> str:
    """Serialise an element."""
    return ET.tostring(el, encoding="unicode")


def parse(text: str) -> ET.Element:
    """Parse an XML document."""
    return ET.fromstring(text)


def drop_nulls(d: dict[str, Any]) -> dict[str, Any] | None:
    """None when every value of `d` is None (an absent nested object)."""
    return d if any(v is not None for v in d.values()) else None
