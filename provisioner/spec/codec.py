"""A DomainSpec back from its `to_json()` view (spec.json, a queued build's arguments in the API's task table).

Decoding follows the dataclasses' type hints, so a field added to DomainSpec
(or its parts) round-trips without a change here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from provisioner.spec.model import Address, DomainSpec


def _decode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        # A union of several kinds (users: dict | str) is stored as is.
        return _decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if kind is Address:
        ip, prefix = value.split("/", 1)
        return Address(ipaddress.IPv4Address(ip), int(prefix))
    if kind in (ipaddress.IPv4Address, Path):
        return kind(value)
    if dataclasses.is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{k: _decode(hints[k], v) for k, v in value.items()})
    return value


def spec_from_json(data: dict[str, Any]) -> DomainSpec:
    """The DomainSpec whose `to_json()` is `data` (the inverse of DomainSpec.to_json)."""
    return _decode(DomainSpec, data)
