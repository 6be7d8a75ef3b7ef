"""Showing user input in an error message: a short, escaped cut, never the whole value."""

from __future__ import annotations

from typing import Any

LIMIT = 40


def cut(text: str, limit: int = LIMIT) -> str:
    """`text` repr-escaped and cut to `limit` characters (… when it was longer)."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def describe(value: Any) -> str:
    """A decoded value (YAML, JSON) as a message may show it: a string cut, a number, or only its type."""
    if isinstance(value, str):
        return cut(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)) and abs(value) < 1e15:
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
