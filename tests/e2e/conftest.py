"""The e2e tier's marker. This folder is a package (like tests/provider/) so that
this conftest is `e2e.conftest` and never shadows tests/conftest.py, which
other test modules import as `conftest`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: boots a real Debian guest under libvirtd + TCG (minutes; root; select with -m e2e)")
