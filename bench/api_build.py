"""Time from `POST /servers` to ACTIVE on the embedded (simulated) hypervisor, polling the API every 50 ms.

Starts `python -m api serve` over a temporary root with a small qcow2 image,
then creates RUNS servers one after another (each deleted, and its delete
waited for, before the next) and prints every time and the median.

Target: median under 5 s.
Run: .venv/bin/python bench/api_build.py [--runs 10] [--root DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from api_server import ApiServer, import_image

POLL = 0.05


def build_once(server: ApiServer, image_id: str, index: int) -> float:
    """Seconds from POST to ACTIVE for one server, then delete it and wait until it is gone."""
    client = server.client()
    start = time.monotonic()
    status, body, _ = client.request("POST", "/compute/v2.1/servers", {"server": {
        "name": f"bench-{index}", "flavorRef": "1", "imageRef": image_id}})
    if status != 202:
        raise SystemExit(f"POST /servers: {status} {body}")
    server_id = body["server"]["id"]
    while True:
        _, body, _ = client.request("GET", f"/compute/v2.1/servers/{server_id}")
        state = body["server"]["status"]
        if state != "BUILD":
            break
        time.sleep(POLL)
    elapsed = time.monotonic() - start
    if state != "ACTIVE":
        raise SystemExit(f"server {server_id} is {state}: {body['server'].get('fault')}")
    client.request("DELETE", f"/compute/v2.1/servers/{server_id}")
    while client.request("GET", f"/compute/v2.1/servers/{server_id}")[0] != 404:
        time.sleep(POLL)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--root", type=Path, help="root to use and keep (default: a temporary one)")
    args = parser.parse_args()
    root = (args.root or Path(tempfile.mkdtemp(prefix="api-build-"))).absolute()
    root.mkdir(parents=True, exist_ok=True)  # a --root that does not exist yet is created (and kept)
    image_id = import_image(root)
    with ApiServer(root) as server:
        times = []
        for index in range(args.runs):
            times.append(build_once(server, image_id, index))
            print(f"build {index + 1}: {times[-1]:.2f} s", flush=True)
    if args.root is None:
        shutil.rmtree(root)
    median = statistics.median(times)
    print(f"POST /servers -> ACTIVE, {args.runs} runs: median {median:.2f} s, min {min(times):.2f} s, "
          f"max {max(times):.2f} s (target < 5 s: {'met' if median < 5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
