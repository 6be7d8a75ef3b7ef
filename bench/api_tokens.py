"""Token-checked requests per second: `python bench/api_tokens.py [--workers N] [--seconds S] [--clients C]`.

Starts `python -m api serve` on a free port over a temporary root, then C
client processes with keep-alive connections send `GET /compute/v2.1/flavors`
(HMAC token check, no database) for S seconds. The Python clients share the
machine with the server: read the result as a lower bound.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from api.accounts import set_user
from api.config import config_path
from provisioner.layout import Layout

PASSWORD = "bench-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    conn.request("POST", "/identity/v3/auth/tokens", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.getheader("X-Subject-Token")


def _client(port: int, token: str, seconds: float, out: multiprocessing.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        conn.request("GET", "/compute/v2.1/flavors", headers={"X-Auth-Token": token})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"status {resp.status}")
        latencies.append(time.monotonic() - start)
    out.put(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="api-bench-"))
    set_user(config_path(Layout(root)), "admin", PASSWORD, "admin", ["admin"])
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "api", "--root", str(root), "serve", "--port", str(port),
                               "--workers", str(args.workers)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                token = _token(port)
                break
            except OSError:
                time.sleep(0.1)
        out: multiprocessing.Queue = multiprocessing.Queue()
        clients = [multiprocessing.Process(target=_client, args=(port, token, args.seconds, out))
                   for _ in range(args.clients)]
        for c in clients:
            c.start()
        latencies = sorted(x for _ in clients for x in out.get())
        for c in clients:
            c.join()
    finally:
        server.terminate()
        server.wait(10)
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(f"workers={args.workers} clients={args.clients}: {len(latencies) / args.seconds:.0f} req/s, "
          f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
