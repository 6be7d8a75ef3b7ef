"""Who claimed a queued row: a process identified by pid and start time, so a dead claimer is detectable.

Shared by the post-boot job queue and the API's server task queue: a row
claimed by a process that is gone (or whose pid was recycled) is free to run again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Worker:
    """A worker process, identified by pid and start time (a recycled pid is not the same worker)."""

    pid: int
    start: int

    @classmethod
    def current(cls) -> Worker:
        """This process."""
        return cls(os.getpid(), _process_start(os.getpid()) or 0)

    def alive(self) -> bool:
        """True while the process that claimed the job still runs."""
        start = _process_start(self.pid)
        return start is not None and start == self.start


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])
