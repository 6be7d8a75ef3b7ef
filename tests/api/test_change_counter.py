"""The change counters every worker process maps (api/change_counter.py): real files, a real second process."""

from __future__ import annotations

import os
from pathlib import Path

from api.change_counter import ChangeCounters, Slot


def test_a_bump_in_another_process_is_seen_through_an_existing_mapping(tmp_path: Path) -> None:
    counters = ChangeCounters(tmp_path / "api" / "changes")
    credentials, failures = counters.value(Slot.CREDENTIALS), counters.value(Slot.AUTH_FAILURES)
    pid = os.fork()
    if pid == 0:  # the child maps the file itself, as a worker process does
        try:
            ChangeCounters(tmp_path / "api" / "changes").bump(Slot.CREDENTIALS)
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert counters.value(Slot.CREDENTIALS) != credentials
    assert counters.value(Slot.AUTH_FAILURES) == failures, "a bump moves its own counter only"


def test_the_file_is_the_engines_alone_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        ChangeCounters.next_to(tmp_path / "api" / "config.yaml").bump(Slot.AUTH_FAILURES)
    finally:
        os.umask(previous)
    assert (tmp_path / "api" / "changes").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "api").stat().st_mode & 0o777 == 0o700
