"""The list file of `provision image sync`: one source per line, with optional digests.

    # comment
    https://example.org/debian-12.qcow2  sha512=…  name=debian-12
    /srv/images/alpine.img               sha256=…

A `#` at the start of a line or after a space starts a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from provisioner.errors import InputError
from provisioner.images.digests import HEX_LENGTH, parse_expected
from provisioner.images.names import check_name, default_name

_COMMENT = re.compile(r"(^|\s)#.*$")
KEYS = ("name", *HEX_LENGTH)


@dataclass(frozen=True)
class ListEntry:
    """One line: where it is, the source, the image name and the digests to check."""

    where: str
    source: str
    name: str
    digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be imported: where it is, what it names if known, and why."""

    where: str
    label: str
    reason: str


def parse_list(path: Path) -> list[ListEntry | BadLine]:
    """Parse a list file, one result per non-blank line, in order.

    A bad line does not stop the others; an unreadable file raises InputError.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read the image list: {exc}") from None
    results: list[ListEntry | BadLine] = []
    names: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = _COMMENT.sub("", line).split()
        if not words:
            continue
        where = f"{path}:{number}"
        entry = _parse_line(where, words)
        if isinstance(entry, ListEntry):
            if entry.name in names:
                entry = BadLine(where, entry.name, f"image {entry.name!r} is already listed at {names[entry.name]}")
            else:
                names[entry.name] = where
        results.append(entry)
    return results


def _parse_line(where: str, words: list[str]) -> ListEntry | BadLine:
    source, pairs = words[0], [word.partition("=") for word in words[1:]]
    label = _label(source, pairs)
    options: dict[str, str] = {}
    for key, sep, value in pairs:
        if not sep or key not in KEYS:
            return BadLine(where, label, f"{key + sep + value!r}: expected KEY=VALUE with KEY one of {', '.join(KEYS)}")
        if key in options:
            return BadLine(where, label, f"{key}= is given twice")
        options[key] = value
    try:
        name = check_name(options.pop("name")) if "name" in options else default_name(source)
        return ListEntry(where, source, name, parse_expected(name, options))
    except InputError as exc:
        return BadLine(where, label, str(exc))


def _label(source: str, pairs: list[tuple[str, str, str]]) -> str:
    """What a summary line calls the image: its name= if any, else its default name, else the source."""
    for key, sep, value in pairs:
        if key == "name" and sep:
            return value
    try:
        return default_name(source)
    except InputError:
        return source
