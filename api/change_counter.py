"""Change counters every worker process shares, read without a system call: a small file mapped into memory.

Per-request checks cache state that lives in shared files (the accounts of
config.yaml, which tokens are revoked, which throttle keys have failures on
record). A cache remembers a counter's value when it loads; whoever changes
the state bumps the counter once the change is durable (the file replaced,
the row committed). A reader that reads the counter before it reloads, and
reloads whenever the value differs, never keeps state older than the last
bump it could have seen. Reading is a memory access: no stat, no SELECT on
the request path while nothing changes.

The file is `<root>/api/changes` (next to config.yaml, 0600). A bump writes a
new random value rather than incrementing, so writers in different processes
need no lock: a reader only compares for equality.
"""

from __future__ import annotations

import mmap
import os
import secrets
import weakref
from enum import IntEnum
from pathlib import Path

FILE_NAME = "changes"
SLOT_BYTES = 8
# A change that bumps no counter (config.yaml edited by hand) is seen within this many seconds:
# the caches that depend on files re-check them at most this often without a bump.
RECHECK_SECONDS = 1.0


class Slot(IntEnum):
    """One counter of the file."""

    CREDENTIALS = 0  # config.yaml replaced (users, passwords, roles) or a token revoked
    AUTH_FAILURES = 1  # a failed authentication recorded by the throttle
    FLAVORS = 2  # a flavor created or deleted through the API (api_flavors)
    SERVERS = 3  # a server row inserted, changed or deleted (api_servers)


class ChangeCounters:
    """The counters of one root, mapped into this process."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        size = SLOT_BYTES * len(Slot)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Growing only: two processes creating the file at once both extend it to the same size.
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    @classmethod
    def at(cls, path: Path) -> ChangeCounters:
        """The counters in the file `path`, mapped once per process while in use (a mapping holds a file
        descriptor: an app's several stores share one, and a process making many apps does not run out)."""
        key = path.absolute()
        found = _MAPPED.get(key)
        if found is None:
            found = _MAPPED[key] = cls(path)
        return found

    @classmethod
    def next_to(cls, config_file: Path) -> ChangeCounters:
        """The counters of the root whose configuration file is `config_file`."""
        return cls.at(config_file.with_name(FILE_NAME))

    @classmethod
    def of_state_db(cls, state_db: Path) -> ChangeCounters:
        """The counters of the root whose state database (Layout.state_db, `<root>/state.db`) is `state_db`."""
        return cls.at(state_db.parent / "api" / FILE_NAME)

    def value(self, slot: Slot) -> int:
        """The counter's current value (only compared for equality)."""
        start = slot * SLOT_BYTES
        return int.from_bytes(self._map[start:start + SLOT_BYTES], "little")

    def bump(self, slot: Slot) -> None:
        """Mark a change: every process's next `value(slot)` differs from what it read before."""
        start = slot * SLOT_BYTES
        self._map[start:start + SLOT_BYTES] = secrets.token_bytes(SLOT_BYTES)


_MAPPED: weakref.WeakValueDictionary[Path, ChangeCounters] = weakref.WeakValueDictionary()
