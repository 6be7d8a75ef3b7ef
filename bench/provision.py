"""Wall time of `bin/provision DOMAIN` on the embedded default hypervisor, Terraform included.

Targets (issue #3): median under 3 s for one domain (shared objects present);
provisioning 50 domains one after another, the median of domains 46-50 is at
most 1.2x the median of domains 1-5 (per-domain state keeps it flat).

Run: .venv/bin/python bench/provision.py [COUNT]   (default 50)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        root, domains = Path(tmp) / "root", Path(tmp) / "domains"
        names = [f"bench{i:02d}.test" for i in range(count + 1)]
        for name in names:
            shutil.copytree(REPO / "example.test", domains / name)
        base = [str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "-q"]
        first = timed(base + [names[0]])  # creates the shared objects (pool, base image)
        times = [timed(base + [name]) for name in names[1:]]
        noop = [timed(base + [names[1]]) for _ in range(5)]
    head, tail = statistics.median(times[:5]), statistics.median(times[-5:])
    print(f"first provision (shared objects created too): {first:.2f} s")
    print(f"provision one domain: median {statistics.median(times):.2f} s over {len(times)} domains (target < 3 s)")
    print(f"unchanged re-provision: median {statistics.median(noop):.2f} s")
    print(f"scaling: domains 1-5 median {head:.2f} s, domains {len(times) - 4}-{len(times)} median {tail:.2f} s, "
          f"ratio {tail / head:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
