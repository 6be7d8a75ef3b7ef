"""data.tar.gz: a site backup whose top-level Makefile's default target sets it up.

It is unpacked as root inside the guest, so it is checked here before any
resource exists: gzip tar, a Makefile at its root, and nothing that could land
outside the directory it is unpacked into.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import Mapping

from provisioner.errors import InputError, ProvisionError
from provisioner.spec.text import open_inside

MAKEFILES = frozenset({"Makefile", "makefile", "GNUmakefile"})
MAX_MEMBERS = 100_000
"""Default cap on the entries (files, directories, links) in data.tar.gz (env PROVISION_ARCHIVE_MAX_MEMBERS)."""
MAX_EXPANDED_BYTES = 4 * 1024**3
"""Default cap on data.tar.gz decompressed, headers included (env PROVISION_ARCHIVE_MAX_BYTES): a gzip bomb stops there."""
MEMBERS_ENV = "PROVISION_ARCHIVE_MAX_MEMBERS"
BYTES_ENV = "PROVISION_ARCHIVE_MAX_BYTES"


def _limit(environ: Mapping[str, str], variable: str, default: int) -> int:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ProvisionError(f"{variable}: must be a positive integer")
    return int(raw)


class _TooLarge(Exception):
    pass


class _BoundedReader(io.RawIOBase):
    """The decompressed stream, refusing to give more than `limit` bytes in all."""

    def __init__(self, stream: gzip.GzipFile, limit: int):
        self.stream = stream
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.stream.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise _TooLarge()
        buffer[:len(data)] = data
        return len(data)


def check_archive(path: Path, directory: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Raise InputError naming the member if `path` is not a safe site archive.

    It must resolve inside `directory` (default: its own), hold at most
    PROVISION_ARCHIVE_MAX_MEMBERS entries and PROVISION_ARCHIVE_MAX_BYTES
    decompressed bytes: both are checked while reading, so a bomb is never
    expanded past them.
    """
    environ = os.environ if environ is None else environ
    max_members = _limit(environ, MEMBERS_ENV, MAX_MEMBERS)
    max_expanded = _limit(environ, BYTES_ENV, MAX_EXPANDED_BYTES)
    where = str(path)
    has_makefile = False
    count = 0
    try:
        with open_inside(path, [directory or path.parent], "the domain directory") as raw, \
                gzip.GzipFile(fileobj=raw, mode="rb") as unzipped, \
                tarfile.open(fileobj=io.BufferedReader(_BoundedReader(unzipped, max_expanded)), mode="r|") as tar:
            for member in tar:
                count += 1
                if count > max_members:
                    raise InputError(where, f"more than {max_members} members ({MEMBERS_ENV}): refused")
                name = _member_path(where, member.name)
                if name in MAKEFILES and member.isfile():
                    has_makefile = True
                if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise InputError(where, f"member {_cut(member.name)} is a device or special file")
                if member.issym():
                    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                        raise InputError(where, f"symlink {_cut(member.name)} -> {_cut(member.linkname)} "
                                                "points outside the archive")
                if member.islnk():
                    _member_path(where, member.linkname, what="hard link target")
    except _TooLarge:
        raise InputError(where, f"expands to more than {max_expanded} bytes ({BYTES_ENV}): refused") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise InputError(where, f"not a readable gzip-compressed tar archive ({str(exc)[:80]})") from None
    if not has_makefile:
        raise InputError(where, "no Makefile at the archive's root (its default target sets the site up)")


def read_archive(path: Path, directory: Path | None) -> bytes:
    """data.tar.gz's bytes, again only from inside `directory` (the domain directory; None: trusted, the API's).

    Between the check at load and the post-boot job's snapshot the file may
    have been swapped for a symlink to a host file, which would go to the guest.
    """
    if directory is None:
        return path.read_bytes()
    with open_inside(path, [directory], "the domain directory") as stream:
        return stream.read()


def _cut(text: str) -> str:
    return repr(text[:40]) + ("…" if len(text) > 40 else "")


def _member_path(where: str, raw: str, what: str = "member") -> str:
    if raw.startswith("/"):
        raise InputError(where, f"{what} {_cut(raw)} is an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(where, f"{what} {_cut(raw)} contains '..'")
    return "/".join(parts)
