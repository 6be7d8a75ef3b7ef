"""data.tar.gz: a site backup whose top-level Makefile's default target sets it up.

It is unpacked as root inside the guest, so it is checked here before any
resource exists: gzip tar, a Makefile at its root, and nothing that could land
outside the directory it is unpacked into.
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from pathlib import Path

from provisioner.errors import InputError

MAKEFILES = frozenset({"Makefile", "makefile", "GNUmakefile"})


def check_archive(path: Path) -> None:
    """Raise InputError naming the member if `path` is not a safe site archive."""
    where = str(path)
    has_makefile = False
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                name = _member_path(where, member.name)
                if name in MAKEFILES and member.isfile():
                    has_makefile = True
                if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise InputError(where, f"member {member.name!r} is a device or special file")
                if member.issym():
                    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                        raise InputError(where, f"symlink {member.name!r} -> {member.linkname!r} points outside the archive")
                if member.islnk():
                    _member_path(where, member.linkname, what="hard link target")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise InputError(where, "file not found") from None
        raise InputError(where, f"not a readable gzip-compressed tar archive ({exc})") from None
    if not has_makefile:
        raise InputError(where, "no Makefile at the archive's root (its default target sets the site up)")


def _member_path(where: str, raw: str, what: str = "member") -> str:
    if raw.startswith("/"):
        raise InputError(where, f"{what} {raw!r} is an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(where, f"{what} {raw!r} contains '..'")
    return "/".join(parts)
