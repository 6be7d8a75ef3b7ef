"""Median time to turn example.test into all its artifacts (in-process, no interpreter start).

Target (issue #2): under 100 ms on a 2-core machine.
Run: .venv/bin/python bench/render.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner import pipeline  # noqa: E402
from provisioner.layout import Layout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        ctx = pipeline.Context(Layout(Path(tmp)), REPO)
        pipeline.render("example.test", ctx)  # first run generates the keys
        cold, warm = [], []
        for i in range(runs):
            # Alternate: a fresh workspace (every file written) and a re-render (nothing changes).
            if i % 2 == 0:
                for f in (Path(tmp) / "domains/example.test").rglob("*"):
                    if f.is_file() and "keys" not in f.parts:
                        f.unlink()
            start = time.perf_counter()
            pipeline.render("example.test", ctx)
            (cold if i % 2 == 0 else warm).append(time.perf_counter() - start)
    print(f"render example.test: median {statistics.median(cold) * 1000:.1f} ms writing all files, "
          f"{statistics.median(warm) * 1000:.1f} ms unchanged re-render ({runs} runs; target < 100 ms)")


if __name__ == "__main__":
    main()
