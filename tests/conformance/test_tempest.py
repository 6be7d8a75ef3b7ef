"""The conformance tier: Tempest 47.0.0, unmodified, against `provision serve` on 127.0.0.1 (docs/conformance.md).

It fails when the server answers any 5xx, when Tempest talks to anything but the
loopback, or when a service's pass count (or the interop list's) falls below the
floor in baseline.json. Raising a floor is a deliberate commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.conftest import SUMMARY_KEY
from conformance.results import Summary, format_summary
from conformance.tier import VENV, run_tier

BASELINE = Path(__file__).resolve().parent / "baseline.json"

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Summary:
    if not (VENV / "bin" / "tempest").exists():
        pytest.skip("the Tempest venv is missing: `make test-deps` builds .venv-tempest")
    workdir = tmp_path_factory.mktemp("conformance")
    found = run_tier(workdir)
    request.config.stash[SUMMARY_KEY] = f"{format_summary(found)}\nsummary and logs: {workdir}"
    return found


def test_no_request_got_a_server_error(summary: Summary) -> None:
    assert summary.server_errors == [], "5xx answers (Tempest's log, then the server's unhandled errors)"


def test_tempest_only_talked_to_the_loopback(summary: Summary) -> None:
    assert summary.run["foreign_requests"] == []


def test_pass_counts_hold_the_baseline(summary: Summary) -> None:
    floors = json.loads(BASELINE.read_text())["passed"]
    passed = {name: counts.passed for name, counts in summary.services.items()}
    passed["interop"] = summary.interop.passed
    below = {name: f"{passed[name]} < {floor}" for name, floor in floors.items() if passed[name] < floor}
    assert below == {}, f"pass counts below tests/conformance/baseline.json: {below}"
