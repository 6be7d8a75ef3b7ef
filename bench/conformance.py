"""The conformance tier as a measurement: Tempest 47.0.0 against `provision serve` on 127.0.0.1, pass counts
per service and for the interop 2020.06 "OpenStack Powered Compute" list, the top failure groups, skip
reasons and the run's wall time (a reading, not a timed test). docs/conformance.md records the figures.

    .venv/bin/python bench/conformance.py [--workdir DIR] [--source TREE] [--regex R] [--concurrency N]

Without --workdir the temporary directory (root, Tempest workspace, logs) is removed afterwards;
--source serves another tree (e.g. `git archive COMMIT | tar -x -C TREE`) for before/after readings.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conformance.results import format_summary  # noqa: E402
from conformance.tier import DEFAULT_REGEX, TierOptions, run_tier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the run here (a new directory)")
    parser.add_argument("--source", type=Path, default=REPO, help="tree whose code serves (default this checkout)")
    parser.add_argument("--regex", default=DEFAULT_REGEX)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--groups", type=int, default=12, help="failure groups shown per service")
    args = parser.parse_args()
    workdir = args.workdir.absolute() if args.workdir else Path(tempfile.mkdtemp(prefix="conformance-"))
    try:
        summary = run_tier(workdir, TierOptions(regex=args.regex, concurrency=args.concurrency,
                                                source=args.source.absolute()))
        print(format_summary(summary, args.groups))
        print(f"wall time {summary.run['seconds']} s, concurrency {args.concurrency}, "
              f"{summary.run['listed']} tests listed")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
