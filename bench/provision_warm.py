"""`bin/provision DOMAIN` with the warm provider against a provider per run, side by side.

Targets (issue #14 item 3): a fresh provision < 0.35 s and a no-op re-apply
< 0.25 s with the warm provider; the 50th domain <= 1.1x the 1st.

Prints medians of (runs interleaved, cold and warm, so load on the box hits both alike):
  * fresh provision (a new domain; the shared pool and base image exist),
  * no-op re-apply of a provisioned domain,
  * warm: a new domain as the 1st of its root against one as the COUNT-th (COUNT-1
    domains already there); each is destroyed after its run, so every run
    measures the same position, and the runs alternate, so load drifting on
    this shared box does not pass for growth,
  * the floors under both: `terraform apply` of an empty configuration and
    `terraform plan` of it (no provider at all), and `bin/provision --help`
    (the CLI's own start-up: Python and its imports).

Each figure is wall time, and beside it the CPU time of the command and its
children (`provision`, Terraform, a provider per run; not the warm provider,
which no run waits for): on this box shared with other engineers' test runs,
wall time moves with the load, CPU time much less.

Commands run with Python's bytecode cache on (PYTHONDONTWRITEBYTECODE removed
from their environment), as an installed package runs: otherwise every
`provision` recompiles ~90 modules, ~0.07 s on this box, in both columns.

Run: .venv/bin/python bench/provision_warm.py [--runs N] [--count N]   (defaults 7, 50)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROVISION = str(REPO / "bin/provision")


def base_env() -> dict[str, str]:
    """This environment without TF_LOG and with the bytecode cache on."""
    env = dict(os.environ)
    for name in ("TF_LOG", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall and CPU time (user + system, with the children it waited for) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


class Site:
    """A root and a domains directory, provisioned one way (warm or cold)."""

    def __init__(self, base: Path, label: str, warm: bool):
        self.root, self.domains = base / f"{label}-root", base / f"{label}-domains"
        self.env = dict(base_env(), PROVISION_WARM_PROVIDER="1" if warm else "0")
        self.count = 0

    def new_domain(self) -> str:
        name = f"bench{self.count:03d}.test"
        self.count += 1
        shutil.copytree(REPO / "example.test", self.domains / name)
        return name

    def provision(self, name: str) -> tuple[float, float]:
        return timed(self._cli("apply", name), self.env)

    def destroy(self, name: str) -> None:
        timed(self._cli("destroy", "--yes", name), self.env)

    def _cli(self, *args: str) -> list[str]:
        return [PROVISION, "--root", str(self.root), "--domains", str(self.domains), "-q", *args]

    def stop_warm_provider(self) -> None:
        for info in (self.root / "run").glob("provider-*/provider.json"):
            try:
                os.kill(json.loads(info.read_text())["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass


def med(values: list[tuple[float, float]]) -> str:
    """Median wall time and, in brackets, median CPU time."""
    return f"{wall(values):.3f} s (cpu {statistics.median(v[1] for v in values):.3f})"


def wall(values: list[tuple[float, float]]) -> float:
    """Median wall time."""
    return statistics.median(v[0] for v in values)


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--count", type=int, default=50, help="domains provisioned one after another (warm)")
    args = parser.parse_args()
    load = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="provision-warm-") as tmp:
        base = Path(tmp)
        cold, warm = Site(base, "cold", warm=False), Site(base, "warm", warm=True)
        first, full = Site(base, "first", warm=True), Site(base, "full", warm=True)
        try:
            for site in (cold, warm):
                site.provision(site.new_domain())  # creates the shared objects (and starts the warm provider)
            fresh: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
            noop: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
            for _ in range(args.runs):
                for label, site in (("cold", cold), ("warm", warm)):
                    fresh[label].append(site.provision(site.new_domain()))
                    noop[label].append(site.provision("bench000.test"))
            first.provision(first.new_domain())  # the shared objects; destroyed below, so each run is the 1st
            first.destroy("bench000.test")
            for _ in range(args.count - 1):
                full.provision(full.new_domain())
            nth: dict[str, list[tuple[float, float]]] = {"first": [], "full": []}
            for _ in range(args.runs):
                for label, site in (("first", first), ("full", full)):
                    name = site.new_domain()
                    nth[label].append(site.provision(name))
                    site.destroy(name)

            empty = base / "empty"
            empty.mkdir()
            (empty / "main.tf").write_text("")
            (base / "terraformrc").write_text("")
            tf_env = dict(base_env(), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1",
                          TF_CLI_CONFIG_FILE=str(base / "terraformrc"))
            timed(["terraform", "init", "-input=false", "-no-color"], tf_env, empty)
            tf_apply = [timed(["terraform", "apply", "-auto-approve", "-input=false", "-no-color"], tf_env, empty)
                        for _ in range(args.runs)]
            tf_plan = [timed(["terraform", "plan", "-input=false", "-no-color"], tf_env, empty)
                       for _ in range(args.runs)]
            cli = [timed([PROVISION, "--help"], base_env()) for _ in range(args.runs)]
        finally:
            for site in (warm, first, full):
                site.stop_warm_provider()

    print(f"load average at the start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at the end "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"fresh provision:   cold {med(fresh['cold'])}   warm {med(fresh['warm'])}   "
          f"ratio {wall(fresh['cold']) / wall(fresh['warm']):.2f}x   (target warm < 0.35 s)")
    print(f"no-op re-apply:    cold {med(noop['cold'])}   warm {med(noop['warm'])}   "
          f"ratio {wall(noop['cold']) / wall(noop['warm']):.2f}x   (target warm < 0.25 s)")
    one, nth_ = wall(nth["first"]), wall(nth["full"])
    print(f"warm, fresh provision: 1st domain of its root {med(nth['first'])}, {args.count}th {med(nth['full'])}, "
          f"ratio {nth_ / one:.2f} (target <= 1.1)")
    print(f"floors: terraform apply (empty configuration) {med(tf_apply)}, terraform plan (empty) {med(tf_plan)}, "
          f"bin/provision --help {med(cli)}")


if __name__ == "__main__":
    main()
