"""Token issue against the password hash's own pace, and the time a wrong password costs for a known and an unknown user.

Prints, on this machine, for each of ROUNDS rounds (the two measures alternate, so load from
other processes weighs on both alike):
  1. scrypt verifications/s in this process with one thread per server worker
     (the ceiling token issue can reach: every issue verifies one password),
     R verifications in all: as many hashes as the HTTP measure, so both last
     about as long and load from other processes weighs on both alike;
  2. POST /identity/v3/auth/tokens per second over HTTP against
     `python -m api serve --workers W` on a temporary root, from C concurrent
     keep-alive clients, R requests in all;
  3. their ratio; then the median ratio (target >= 0.9);
  4. the median latency of a wrong password for an existing user and for an
     unknown one (K of each, one client, alternating), and their ratio (1.0:
     timing does not tell whether a user exists).
The failure throttle stays on with limits too high to trip, so its cost is in the figures.

Run: .venv/bin/python bench/token_issue.py [--workers W] [--clients C] [--requests R] [--rounds N] [--wrong K]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from api_server import PASSWORD, USER, ApiServer, Client, auth_body

from api.accounts import set_user
from api.config import config_path
from api.identity.passwords import KEY_BYTES, N, P, R, hash_password, verify_password
from provisioner.layout import Layout

# Written into the bench root's config.yaml: throttling on, never tripping during the bench.
THROTTLE_CONFIG = "auth_failures_per_user: 1000000\nauth_failures_per_address: 1000000\n"


def verifications_per_second(threads: int, count: int) -> float:
    """scrypt verifications/s with `threads` threads verifying `count` passwords in all, in this process."""
    encoded = hash_password(PASSWORD)

    def verify(share: int) -> None:
        for _ in range(share):
            assert verify_password(PASSWORD, encoded)

    workers = [threading.Thread(target=verify, args=(count // threads + (index < count % threads),))
               for index in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - start)


def issues_per_second(port: int, clients: int, requests: int) -> float:
    """Token issues/s: `clients` keep-alive connections sharing `requests` POSTs; every one must be a 201."""
    remaining = iter(range(requests))
    lock = threading.Lock()
    failures: list[int] = []
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        conn = Client(port)
        ready.wait()
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            status, _, _ = conn.request("POST", "/identity/v3/auth/tokens", auth_body())
            if status != 201:
                failures.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} token requests failed, e.g. HTTP {failures[0]}")
    return requests / elapsed


def wrong_password_medians(port: int, rounds: int) -> tuple[float, float]:
    """Median seconds of a 401 for the existing user and for unknown users (a new name each time), alternating."""
    conn = Client(port)
    known, unknown = [], []
    for index in range(rounds):
        for user, times in ((USER, known), (f"nobody-{index}", unknown)):
            start = time.perf_counter()
            status, _, _ = conn.request("POST", "/identity/v3/auth/tokens", auth_body(user, "not-the-password"))
            times.append(time.perf_counter() - start)
            if status != 401:
                raise SystemExit(f"a wrong password for {user} answered {status}, not 401")
    return statistics.median(known), statistics.median(unknown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="server processes, and threads for the in-process rate (default: the CPUs, here "
                             f"{len(os.sched_getaffinity(0))})")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--requests", type=int, default=300, help="token requests in all (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both measures (default 3)")
    parser.add_argument("--wrong", type=int, default=21, help="wrong passwords per kind of user (default 21)")
    args = parser.parse_args()

    rounds = []
    root = Path(tempfile.mkdtemp(prefix="token-issue-")).absolute()
    try:
        path = config_path(Layout(root))
        set_user(path, USER, PASSWORD, "admin", ["admin"])
        with path.open("a") as out:
            out.write(THROTTLE_CONFIG)
        with ApiServer(root, args.workers) as server:
            issues_per_second(server.port, args.clients, 2 * args.workers)  # warm every worker up
            for _ in range(args.rounds):
                verified = verifications_per_second(args.workers, args.requests)
                rounds.append((verified, issues_per_second(server.port, args.clients, args.requests)))
            known, unknown = wrong_password_medians(server.port, args.wrong)
    finally:
        shutil.rmtree(root)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"scrypt N={N} r={R} p={P} dklen={KEY_BYTES}; {os.cpu_count()} CPUs; load average now {load}")
    print(f"  {args.workers} threads verifying in process vs {args.workers} workers issuing tokens over HTTP "
          f"to {args.clients} clients ({args.requests} requests):")
    for verified, issued in rounds:
        print(f"    verifications/s {verified:.1f}, token issues/s {issued:.1f}, ratio {issued / verified:.2f}")
    ratio = statistics.median(issued / verified for verified, issued in rounds)
    print(f"  median ratio issues / verifications: {ratio:.2f} (target >= 0.9)")
    print(f"  wrong password, median of {args.wrong}: existing user {known * 1000:.1f} ms, "
          f"unknown user {unknown * 1000:.1f} ms, ratio unknown/existing {unknown / known:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
