"""The conformance tier prints its summary at the end of the pytest run (CI logs keep the counts)."""

from __future__ import annotations

import pytest

SUMMARY_KEY = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    text = config.stash.get(SUMMARY_KEY, None)
    if text:
        terminalreporter.section("Tempest conformance")
        terminalreporter.write_line(text)
