"""Requests/s and p99 latency of the API under wrk: 8 connections from a second process on loopback.

Starts `python -m api serve --workers N` over a root (a temporary one by
default) and runs wrk (Debian package `wrk`, installed by
`bin/install-deps --test`) with a Lua script that sets `X-Auth-Token`:

  flavors   GET /compute/v2.1/flavors/detail       token check, no database
  servers   GET /compute/v2.1/servers/detail       with SERVERS servers created through the API
                                                    on the simulated hypervisor (built first)
  tokens    POST /identity/v3/auth/tokens          a password check per request (scrypt)

Target: flavors >= 3,000 req/s with p99 < 20 ms.
Run: .venv/bin/python bench/api_load.py [--workers N] [--seconds 10] [--servers 200] [--root DIR] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from api_server import ApiServer, auth_body, import_image

from api.identity.passwords import KEY_BYTES, N, P, R

CONNECTIONS = 8
# wrk calls done() once with the whole run's numbers; latencies are in microseconds.
REPORT = """
function done(summary, latency, requests)
  io.write(string.format('{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d, "non2xx": %d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status))
end
"""


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def lua_script(directory: Path, name: str, token: str | None, method: str = "GET", body: str | None = None) -> Path:
    """A wrk script sending `method` with the token (and a JSON body) and printing JSON at the end."""
    lines = [f"wrk.method = {json.dumps(method)}"]
    if token is not None:
        lines.append(f"wrk.headers[\"X-Auth-Token\"] = {json.dumps(token)}")
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = {json.dumps(body)}"]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + REPORT)
    return path


def run_wrk(name: str, url: str, script: Path, seconds: int) -> Result:
    """wrk with CONNECTIONS connections on 2 threads for `seconds`."""
    done = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                           url], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    rate = report["requests"] / (report["duration_us"] / 1e6)
    return Result(name, rate, report["p50_us"] / 1000, report["p99_us"] / 1000, report["errors"] + report["non2xx"])


def create_servers(server: ApiServer, count: int) -> None:
    """Make the root hold `count` servers (created through the API), and wait until none is building."""
    client = server.client()
    existing = len(client.request("GET", "/compute/v2.1/servers")[1]["servers"])
    if existing < count:  # the default quotas allow 10 instances (20 cores): lift them for the bench project
        project = client.request("GET", "/identity/v3/auth/projects")[1]["projects"][0]["id"]
        status, body, _ = client.request("PUT", f"/compute/v2.1/os-quota-sets/{project}", {"quota_set": {
            "instances": -1, "cores": -1, "ram": -1}})
        if status != 200:
            raise SystemExit(f"PUT os-quota-sets: {status} {body}")
    image_id = import_image(server.root) if existing < count else None
    start = time.monotonic()
    for index in range(existing, count):
        status, body, _ = client.request("POST", "/compute/v2.1/servers", {"server": {
            "name": f"load-{index}", "flavorRef": "1", "imageRef": image_id}})
        if status != 202:
            raise SystemExit(f"POST /servers: {status} {body}")
    while True:
        servers = client.request("GET", "/compute/v2.1/servers/detail")[1]["servers"]
        building = sum(s["status"] == "BUILD" for s in servers)
        if not building:
            break
        time.sleep(1)
    failed = [s for s in servers if s["status"] != "ACTIVE"]
    if failed:
        raise SystemExit(f"{len(failed)} servers are not ACTIVE, e.g. {failed[0]['status']}: {failed[0].get('fault')}")
    if existing < count:
        print(f"built {count - existing} servers in {time.monotonic() - start:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, help="server processes (default: provision serve's default)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--root", type=Path,
                        help="root to use and keep (a re-run reuses its servers); default: a temporary one")
    parser.add_argument("--only", choices=("flavors", "servers", "tokens"), action="append")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run bin/install-deps --test (as root)")
    root = (args.root or Path(tempfile.mkdtemp(prefix="api-load-"))).absolute()
    only = args.only or ["flavors", "servers", "tokens"]
    scripts = Path(tempfile.mkdtemp(prefix="api-load-lua-"))
    results = []
    with ApiServer(root, args.workers) as server:
        base = f"http://127.0.0.1:{server.port}"
        if "flavors" in only:
            script = lua_script(scripts, "flavors", server.token)
            results.append(run_wrk("GET flavors/detail", f"{base}/compute/v2.1/flavors/detail", script, args.seconds))
        if "servers" in only:
            create_servers(server, args.servers)
            script = lua_script(scripts, "servers", server.token)
            results.append(run_wrk(f"GET servers/detail ({args.servers} servers)",
                                   f"{base}/compute/v2.1/servers/detail", script, args.seconds))
        if "tokens" in only:
            script = lua_script(scripts, "tokens", None, "POST", json.dumps(auth_body()))
            results.append(run_wrk(f"POST auth/tokens (scrypt N={N} r={R} p={P} dklen={KEY_BYTES})",
                                   f"{base}/identity/v3/auth/tokens", script, args.seconds))
    shutil.rmtree(scripts)
    if args.root is None:
        shutil.rmtree(root)
    workers = args.workers or "default"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{CONNECTIONS} connections, {args.seconds} s each, workers={workers}, {os.cpu_count()} CPUs, "
          f"load average now {load}" + (f", root {root}" if args.root else ""))
    for r in results:
        print(f"  {r.name}: {r.rate:.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, errors {r.errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
