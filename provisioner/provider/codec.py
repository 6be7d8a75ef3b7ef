"""tfplugin6 DynamicValue <-> Python values (msgpack, with cty's unknown)."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from .schema import UNKNOWN, Schema, conform

# cty encodes an unknown value as msgpack extension type 0.
_UNKNOWN_EXT = msgpack.ExtType(0, b"\x00")
_NULL = msgpack.packb(None)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0:
        return UNKNOWN
    return msgpack.ExtType(code, data)


def _default(obj: Any) -> Any:
    if obj is UNKNOWN:
        return _UNKNOWN_EXT
    raise TypeError(f"cannot encode {type(obj).__name__} as a Terraform value")


def decode(dv: Any, attrs: Schema | None = None) -> Any:
    """Decode a DynamicValue message (msgpack or JSON) to Python data."""
    if dv is None:
        return None
    if dv.msgpack:
        value = msgpack.unpackb(dv.msgpack, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    elif dv.json:
        value = json.loads(dv.json)
    else:
        return None
    return conform(attrs, value) if attrs is not None else value


def encode(value: Any, attrs: Schema | None, pb: Any) -> Any:
    """Encode Python data as a DynamicValue, conformed to the schema."""
    if value is None:
        return pb.DynamicValue(msgpack=_NULL)
    if attrs is not None:
        value = conform(attrs, value)
    return pb.DynamicValue(msgpack=msgpack.packb(value, default=_default, use_bin_type=True))


def decode_raw_state(raw_json: bytes, attrs: Schema) -> Any:
    """Decode the JSON state Terraform stored (UpgradeResourceState)."""
    return conform(attrs, json.loads(raw_json)) if raw_json else None
