"""Writing rendered files into the root: atomically, and only when they changed."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

# Every file under the root is its owner's (docs/vms-layout.md): plans and logs hold no secret,
# but they sit beside files that do, and nobody else needs them.
PRIVATE = 0o600


@dataclass(frozen=True)
class Artifact:
    """One file of a workspace: path relative to it, content, mode."""

    path: str
    content: bytes
    mode: int = PRIVATE


def write_atomic(path: Path, content: bytes, mode: int = PRIVATE) -> bool:
    """Replace `path` with `content` via a temp file + rename; False if unchanged."""
    try:
        if path.read_bytes() == content and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write or close names no file: say which one
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_artifacts(directory: Path, artifacts: Iterable[Artifact]) -> list[str]:
    """Write artifacts under `directory` (mode 0700); return the paths that changed."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return [a.path for a in artifacts if write_atomic(directory / a.path, a.content, a.mode)]
