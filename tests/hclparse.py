"""Generated HCL read back as plain Python values (python-hcl2 8.x)."""

from __future__ import annotations

from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def loads(text: str) -> dict[str, Any]:
    """Parse HCL: strings unquoted, block labels plain, no comment keys."""
    return _unquote_keys(hcl2.loads(text, serialization_options=_OPTIONS))


def _unquote_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.strip('"'): _unquote_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote_keys(v) for v in value]
    return value
