"""Reading a domain directory's input files: only from inside it, bounded, with errors that name the file.

A domain directory is written by the site's owner, not by the engine's
operator: a symlink or a `..` in it must not make the engine (running as
root) read a host file such as /etc/shadow.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from provisioner.errors import InputError

MAX_TEXT_BYTES = 256 * 1024
"""Cap on an input text file (users.yaml; provision.conf has its own, smaller one), checked before parsing."""


def is_inside(path: Path, directories: Sequence[Path]) -> bool:
    """True if `path` (already resolved) is one of `directories` (resolved) or below one."""
    return any(path == d or path.is_relative_to(d) for d in directories)


def resolved(path: Path) -> Path:
    """`path` with every symlink followed; InputError naming it for a symlink loop."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # RuntimeError: Python 3.11's symlink loop
        raise InputError(str(path), "a symlink loop") from None


def _opened_path(fd: int) -> Path:
    # What the descriptor really is, after every symlink: checked after the open, so a
    # symlink swapped in between the first check and the open cannot slip through.
    return Path(os.readlink(f"/proc/self/fd/{fd}"))


@contextmanager
def open_inside(path: Path, directories: Sequence[Path], outside: str) -> Iterator[BinaryIO]:
    """Open the regular file `path` for reading if it resolves inside one of `directories`.

    InputError naming `path` if it is missing, not a regular file, or resolves
    outside them (`outside` says where it must be, e.g. "the domain directory").
    The file's content never appears in an error.
    """
    where = str(path)
    allowed = [d.resolve() for d in directories]
    if not is_inside(resolved(path), allowed):
        raise InputError(where, f"resolves outside {outside} (through a symlink or '..'): refused")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(where, "file not found") from None
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror})") from None
    try:
        if not is_inside(_opened_path(fd), allowed):
            raise InputError(where, f"resolves outside {outside} (through a symlink or '..'): refused")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(where, "not a regular file")
        os.set_blocking(fd, True)
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def read_bytes(path: Path, limit: int, directories: Sequence[Path] | None = None) -> bytes:
    """The bytes of `path`, at most `limit` of them (InputError if larger), read from inside `directories`.

    `directories` defaults to the file's own directory (the domain directory
    for provision.conf and users.yaml).
    """
    with open_inside(path, directories or [path.parent], "the domain directory") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(str(path), f"larger than {_size(limit)}: refused before parsing")
    return data


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of `path` (inside its own directory, at most `limit` bytes); InputError naming the file."""
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from None


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"
