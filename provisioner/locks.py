"""Exclusive locks on files (flock): one apply at a time per workspace."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from provisioner.errors import ProvisionError


class LockBusy(ProvisionError):
    """Another process holds the lock and we were told not to wait."""


@contextmanager
def exclusive(path: Path, what: str, wait: bool = True,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block.

    The holder's pid is written into the file so a waiting user can be told who.
    The kernel drops the lock when the holder dies, so a crash never leaves it stuck.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            message = f"{what} is locked by process {holder}"
            if not wait:
                raise LockBusy(f"{message}; try again when it has finished") from None
            if on_wait:
                on_wait(f"{message}; waiting…")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
