"""The bounded YAML loader (provisioner/safeyaml.py) against PyYAML's safe_load, and what a bomb costs it.

1. A valid cloud-config at Nova's user_data limit (64 KiB of base64, ~48 KiB of
   YAML: users with keys, packages): median seconds per load for both loaders
   and their ratio (the bound checks run per node, so the ratio is the price).
2. The depth-9 alias bomb of tests/api/test_user_data_bombs.py: median seconds
   until safeyaml refuses it (safe_load would return a 387-million-leaf
   structure, which is only expanded later by whoever walks it).

Run: .venv/bin/python bench/yaml_loader.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner import safeyaml  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN0dkx3isMvky47klZ+VCnvfUtxDAxpoWyHDLtFXb/nl"


def valid_cloud_config(limit: int = 48_000) -> str:
    """Users with groups and keys, then packages, up to `limit` characters."""
    lines = ["#cloud-config", "users:"]
    index = 0
    while sum(len(line) + 1 for line in lines) < limit - 2_000:
        lines += [f"  - name: user{index}", "    shell: /bin/bash", "    groups: [adm, sudo]",
                  "    lock_passwd: true", "    ssh_authorized_keys:", f"      - {KEY} user{index}@example.test"]
        index += 1
    lines += ["packages:"] + [f"  - package{i}" for i in range(100)]
    return "\n".join(lines) + "\n"


def bomb(depth: int = 9, width: int = 9) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = ["#cloud-config", "users:", "  - name: ops", "    shell:",
             f"      - &a [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth):
        lines.append(f"      - &{letters[level]} [{', '.join([f'*{letters[level - 1]}'] * width)}]")
    return "\n".join(lines) + "\n"


def median_seconds(load: Callable[[str], object], text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            load(text)
        except safeyaml.YamlError:
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    text = valid_cloud_config()
    assert safeyaml.load(text) == yaml.safe_load(text)
    # Alternated, one run each at a time: the box is shared and its speed drifts.
    pairs = [(median_seconds(yaml.safe_load, text, 1), median_seconds(safeyaml.load, text, 1))
             for _ in range(args.runs)]
    plain = statistics.median(p for p, _ in pairs)
    bounded = statistics.median(b for _, b in pairs)
    print(f"valid cloud-config, {len(text)} characters: safe_load {plain * 1000:.1f} ms, "
          f"safeyaml {bounded * 1000:.1f} ms (median of {args.runs}); ratio safeyaml/safe_load {bounded / plain:.2f}")
    refused = median_seconds(safeyaml.load, bomb(), args.runs)
    print(f"depth-9 alias bomb, {len(bomb())} characters: refused by safeyaml in {refused * 1000:.2f} ms "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
