"""What the quota check costs a create: median latency of `POST /network/v2.0/security-groups` while the project
holds few groups, and again once it holds many (the check counts the project's records in the transaction).

Starts `python -m api serve` over a temporary root, sets the admin project's security_group quota to -1
(unlimited: every create still runs the check), then times SAMPLES creates after FEW and after MANY groups
exist, and prints both medians and their ratio.

The check counts with SELECT COUNT(*) (ports: the project's servers' NICs); what still grows with the
number of groups is the create's own answer, which lists the caller's groups and rules to build its view.

Run: .venv/bin/python bench/quota_check.py [--samples 50] [--many 1000] [--root DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from api_server import ApiServer


def median_create(client, prefix: str, samples: int) -> float:
    """Median seconds of `samples` security group creates."""
    times = []
    for index in range(samples):
        start = time.monotonic()
        status, body, _ = client.request("POST", "/network/v2.0/security-groups",
                                         {"security_group": {"name": f"{prefix}-{index}"}})
        times.append(time.monotonic() - start)
        if status != 201:
            raise SystemExit(f"POST security-groups: {status} {body}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--root", type=Path, help="keep this root (default: a temporary one, removed)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-quota-")) / "root"
    try:
        with ApiServer(root, workers=1) as server:
            client = server.client()
            _, body, _ = client.request("GET", "/network/v2.0/security-groups")
            project = body["security_groups"][0]["project_id"]
            status, body, _ = client.request("PUT", f"/network/v2.0/quotas/{project}",
                                             {"quota": {"security_group": -1}})
            if status != 200:
                raise SystemExit(f"PUT quotas: {status} {body}")
            few = median_create(client, "few", args.samples)
            median_create(client, "fill", args.many)
            many = median_create(client, "many", args.samples)
        print(f"median create with {args.samples} groups: {few * 1000:.2f} ms")
        print(f"median create with {args.many + 2 * args.samples} groups: {many * 1000:.2f} ms")
        print(f"ratio many/few: {many / few:.2f}")
    finally:
        if args.root is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
