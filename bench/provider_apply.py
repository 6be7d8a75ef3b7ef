"""Benchmark the embedded libvirt provider under real terraform.

Prints the median wall time (5 runs each) of:
  * provider start-up (exec of the mirror's wrapper to the go-plugin handshake line),
  * `terraform apply` of the example domain plan (2 volumes + 1 domain) on a
    simulated hypervisor (the shared pool/base image already applied),
  * a no-op `terraform plan` of that workspace.

Usage: .venv/bin/python bench/provider_apply.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.provider.mirror import EXECUTABLE, install_mirror  # noqa: E402
from provisioner.provider.plugin import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE  # noqa: E402
from tests.provider.tfrun import Workspace, domain_plan, shared_plan, terraform_env  # noqa: E402


def startup_time(exe: Path) -> float:
    """Seconds from exec to the handshake line."""
    env = dict(os.environ, **{MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": "6"})
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait()
    if not line.startswith(b"1|6|unix|"):
        raise SystemExit(f"unexpected handshake: {line!r}")
    return elapsed


def timed(fn) -> float:
    """Wall time of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="provider-bench-") as tmp:
        root = Path(tmp)
        cli_config = install_mirror(root / "terraform")
        exe = next((root / "terraform" / "mirror").rglob(EXECUTABLE))
        env = terraform_env(cli_config)
        uri = f"test://{root}/hypervisor/node.xml"
        pool = root / "pool"
        seed = root / "seed.iso"
        seed.write_bytes(b"\0" * 65536)

        def workspace(rel: str, text: str) -> Workspace:
            ws = Workspace(root / rel, env)
            ws.dir.mkdir(parents=True)
            (ws.dir / "main.tf").write_text(text)
            ws.init()
            return ws

        workspace("shared", shared_plan(uri, pool, "https://example.invalid/base.qcow2")).apply()
        dom = workspace("domain", domain_plan(uri, "example.test", pool, seed))

        starts = [startup_time(exe) for _ in range(args.runs)]
        applies = []
        for _ in range(args.runs):
            applies.append(timed(dom.apply))
            dom.destroy()
        dom.apply()
        plans = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            code, out = dom.plan_exitcode()
            plans.append(time.perf_counter() - t0)
            if code != 0:
                raise SystemExit(f"plan was not a no-op:\n{out}")

    print(f"provider start-up (to handshake): median {statistics.median(starts):.3f} s  "
          f"(runs: {', '.join(f'{t:.3f}' for t in starts)})")
    print(f"terraform apply (2 volumes + domain): median {statistics.median(applies):.3f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in applies)})")
    print(f"terraform plan, no-op: median {statistics.median(plans):.3f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in plans)})")


if __name__ == "__main__":
    main()
