"""Tempest's per-test results -> counts per service, the interop list's share, and failure groups."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("compute", "identity", "image", "network", "volume")
PASSED = {"success", "xfail"}  # xfail: Tempest marks none; counted as Python's unittest does
SKIPPED = {"skip"}
CLASS_FIXTURE = re.compile(r"(setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)")
IDEMPOTENT_ID = re.compile(r"\[(?:[^\]]*,)?id-(?P<id>[0-9a-f-]{36})")
# Parts of a failure message that differ between tests of one cause.
VOLATILE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|"
                      r"127\.0\.0\.1:\d+|tempest-[\w-]+|\b\d+(\.\d+)?\b")


@dataclass(frozen=True)
class Outcome:
    """One listed test's result: passed, failed or skipped, with the skip reason or failure message."""

    test_id: str
    status: str  # passed | failed | skipped
    reason: str = ""


@dataclass
class Tally:
    """Counts for a set of tests."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    failure_groups: dict[str, int] = field(default_factory=dict)


def test_class(test_id: str) -> str:
    """tempest.api.x.test_y.Class.test_z[id-…] -> tempest.api.x.test_y.Class"""
    return test_id.split("[", 1)[0].rsplit(".", 1)[0]


def service_of(test_id: str) -> str:
    """The service a tempest.api test belongs to (compute, identity, …)."""
    return test_id.split(".")[2]


def idempotent_id(test_id: str) -> str | None:
    """The uuid in a Tempest test id's attributes, or None."""
    match = IDEMPOTENT_ID.search(test_id)
    return match.group("id") if match else None


def failure_group(reason: str) -> str:
    """A failure's (or skip's) message with ids, ports and numbers blanked, cut short: tests failing alike
    share it."""
    return VOLATILE.sub("#", reason)[:160] or "(no message)"


def outcomes(listed: list[str], results: list[dict[str, Any]]) -> list[Outcome]:
    """Every listed test's outcome. A test with no result of its own takes its class fixture's
    (a skip or failure in setUpClass ends the whole class), else it did not run: a failure."""
    own: dict[str, dict[str, Any]] = {}
    fixtures: dict[str, dict[str, Any]] = {}
    for result in results:
        match = CLASS_FIXTURE.fullmatch(result["id"])
        if match:
            if result["status"] not in PASSED:
                fixtures.setdefault(match.group("cls"), result)
        else:
            own[result["id"]] = result
    found = []
    for test_id in listed:
        result = own.get(test_id) or fixtures.get(test_class(test_id))
        if result is None:
            found.append(Outcome(test_id, "failed", "did not run (no result recorded)"))
        elif result["status"] in PASSED:
            found.append(Outcome(test_id, "passed"))
        elif result["status"] in SKIPPED:
            found.append(Outcome(test_id, "skipped", result["reason"]))
        else:
            prefix = "" if result["id"] == test_id else "in setUpClass: "
            found.append(Outcome(test_id, "failed", prefix + result["reason"]))
    return found


def tally(items: list[Outcome]) -> Tally:
    """Counts, skip reasons and failure groups of `items`."""
    counts = Tally(total=len(items))
    reasons: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for item in items:
        if item.status == "passed":
            counts.passed += 1
        elif item.status == "skipped":
            counts.skipped += 1
            reasons[failure_group(item.reason)] += 1
        else:
            counts.failed += 1
            groups[failure_group(item.reason)] += 1
    counts.skip_reasons = dict(reasons.most_common())
    counts.failure_groups = dict(groups.most_common())
    return counts


def read_interop(path: Path) -> set[str]:
    """The idempotent ids of the interop list file (third column)."""
    ids = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            ids.add(line.split()[2])
    return ids


@dataclass
class Summary:
    """The tier's result: per service, for the interop list, and any 5xx seen."""

    services: dict[str, Tally]
    interop: Tally
    interop_not_listed: list[str]
    server_errors: list[str]
    run: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(listed: list[str], results: list[dict[str, Any]], interop_ids: set[str],
              server_errors: list[str], run: dict[str, Any]) -> Summary:
    """The summary of one run."""
    found = outcomes(listed, results)
    services = {name: tally([o for o in found if service_of(o.test_id) == name]) for name in SERVICES}
    interop_tally = tally(interop_outcomes(found, interop_ids))
    missing = sorted(interop_ids - {idempotent_id(o.test_id) for o in found})
    return Summary(services, interop_tally, missing, server_errors, run)


def interop_outcomes(found: list[Outcome], interop_ids: set[str]) -> list[Outcome]:
    """One outcome per required idempotent id, as RefStack counts: passed if any test carrying it
    passed (subclasses repeat a test under the same id); a required id no listed test carries
    is not passed."""
    by_id: dict[str, list[Outcome]] = {}
    for outcome in found:
        key = idempotent_id(outcome.test_id)
        if key in interop_ids:
            by_id.setdefault(key, []).append(outcome)
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    chosen = [min(items, key=lambda o: rank[o.status]) for items in by_id.values()]
    chosen += [Outcome(f"id-{key}", "failed", "not in the run's test list") for key in sorted(interop_ids - set(by_id))]
    return chosen


def format_summary(summary: Summary, groups: int = 8) -> str:
    """A short human report: counts per service, interop share, top failure groups, skip reasons."""
    lines = [f"{'service':<10} {'passed':>7} {'failed':>7} {'skipped':>8} {'total':>6}"]
    rows = [*summary.services.items(), ("interop", summary.interop)]
    for name, counts in rows:
        lines.append(f"{name:<10} {counts.passed:>7} {counts.failed:>7} {counts.skipped:>8} {counts.total:>6}")
    total = Tally(*(sum(getattr(c, k) for c in summary.services.values())
                    for k in ("total", "passed", "failed", "skipped")))
    lines.append(f"{'all':<10} {total.passed:>7} {total.failed:>7} {total.skipped:>8} {total.total:>6}")
    if summary.interop_not_listed:
        lines.append(f"interop tests not in this Tempest's list (count as not passed): "
                     f"{len(summary.interop_not_listed)}")
    lines.append(f"5xx responses: {len(summary.server_errors)}")
    for name, counts in summary.services.items():
        if counts.failure_groups:
            lines.append(f"-- {name}: top failure groups")
            lines += [f"  {n:>4}  {group}" for group, n in list(counts.failure_groups.items())[:groups]]
    for name, counts in summary.services.items():
        if counts.skip_reasons:
            lines.append(f"-- {name}: skip reasons")
            lines += [f"  {n:>4}  {reason}" for reason, n in counts.skip_reasons.items()]
    return "\n".join(lines)
