"""Children that end with the tier: a killed test run must not leave a server or Tempest behind."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for Popen: SIGTERM to the child when the process that started it dies (Linux prctl).

    `provision serve` stops its forked workers on SIGTERM, and Tempest's stestr ends its workers.
    """
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
