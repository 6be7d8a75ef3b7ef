"""A normal client's latency while slow clients hold connections (slowloris, issue #11 item 4).

Starts `python -m api serve` over a temporary root with the default transport
limits (api/transport.py), then per scenario sends REQUESTS sequential
requests from 127.0.0.1, each on a new connection (as the stock CLI does):
GET /compute/v2.1/flavors with a token. The scenarios:

  baseline         no attack
  many addresses   SLOW connections from 127.0.0.2 .. 127.0.0.(1+ADDRESSES)
  same address     SLOW connections from 127.0.0.1, the normal client's own address

A slow connection sends the start of a request, then one header byte every
5 s, and reconnects at once when the server cuts it (header_timeout) or
sheds it (connection limits). The attack starts WARMUP seconds before the
measured requests (longer than header_timeout, so its connections have been
cut and reconnected). Everything is bounded: a request waits at most 10 s,
a scenario measures for at most 120 s, then the attack stops.

Prints per scenario the median and p99 latency, failed requests, and the
ratio of median and p99 to the baseline's.
Run: .venv/bin/python bench/slowloris.py [--slow 230] [--addresses 8] [--requests 200] [--warmup 12]
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from api_server import ApiServer

TRICKLE_INTERVAL = 5.0  # seconds between a slow connection's bytes
TICK = 0.25  # seconds between the attacker's passes over its connections
REQUEST_TIMEOUT = 10.0
MEASURE_LIMIT = 120.0  # seconds a scenario may spend on its measured requests


@dataclass(frozen=True)
class Measure:
    """One scenario's normal-client requests."""

    name: str
    median_ms: float
    p99_ms: float
    failed: int
    sent: int
    cut: int  # slow connections the server closed during the scenario


class Attack:
    """`count` slow connections from `sources` (round robin), kept up by a thread until stopped."""

    def __init__(self, port: int, count: int, sources: list[str]):
        self.port = port
        self.sources = [sources[index % len(sources)] for index in range(count)]
        self.sockets: list[socket.socket | None] = [None] * count
        self.next_byte = [0.0] * count
        self.cut = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Attack:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(30)
        for sock in self.sockets:
            if sock is not None:
                sock.close()

    def _open(self, index: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(1.0)
            sock.bind((self.sources[index], 0))
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(b"GET /compute/v2.1/flavors HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        self.sockets[index] = sock
        # Spread the bytes over the interval, as separate clients would.
        self.next_byte[index] = time.monotonic() + TRICKLE_INTERVAL * (index % 20 + 1) / 20

    def _closed(self, sock: socket.socket) -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _run(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            for index, sock in enumerate(self.sockets):
                if self.stopping.is_set():
                    return
                if sock is None:
                    self._open(index)
                    continue
                if self._closed(sock):
                    sock.close()
                    self.sockets[index] = None
                    self.cut += 1
                elif now >= self.next_byte[index]:
                    try:
                        sock.send(b"X")
                    except OSError:
                        pass  # seen as closed on the next pass
                    self.next_byte[index] = now + TRICKLE_INTERVAL
            self.stopping.wait(TICK)


def request_latencies(port: int, token: str, count: int) -> tuple[list[float], int]:
    """Latencies (seconds) of successful requests, each on a new connection from 127.0.0.1, and failures."""
    latencies, failed = [], 0
    deadline = time.monotonic() + MEASURE_LIMIT
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT,
                                          source_address=("127.0.0.1", 0))
        try:
            conn.request("GET", "/compute/v2.1/flavors", headers={"X-Auth-Token": token})
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        if ok:
            latencies.append(time.perf_counter() - start)
        else:
            failed += 1
    return latencies, failed


def measure(name: str, server: ApiServer, count: int, attack: Attack | None, warmup: float) -> Measure:
    """One scenario: the attack (if any) runs during the warm-up and the measured requests."""
    if attack is None:
        latencies, failed = request_latencies(server.port, server.token, count)
        cut = 0
    else:
        with attack:
            time.sleep(warmup)
            latencies, failed = request_latencies(server.port, server.token, count)
            cut = attack.cut
    if len(latencies) < 2:
        return Measure(name, float("inf"), float("inf"), failed, len(latencies) + failed, cut)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    return Measure(name, statistics.median(latencies) * 1000, p99 * 1000, failed, len(latencies) + failed, cut)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=230, help="slow connections (the issue's attack: 230)")
    parser.add_argument("--addresses", type=int, default=8, help="source addresses of the many-address attack")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--warmup", type=float, default=12.0, help="seconds of attack before measuring")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="slowloris-"))
    try:
        with ApiServer(root / "root") as server:
            request_latencies(server.port, server.token, 20)  # warm the server's caches
            many = [f"127.0.0.{2 + index}" for index in range(args.addresses)]
            results = [
                measure("baseline", server, args.requests, None, 0),
                measure(f"{args.slow} slow from {len(many)} addresses", server, args.requests,
                        Attack(server.port, args.slow, many), args.warmup),
                measure(f"{args.slow} slow from 127.0.0.1", server, args.requests,
                        Attack(server.port, args.slow, ["127.0.0.1"]), args.warmup),
            ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = results[0]
    print(f"{'scenario':34} {'median ms':>10} {'p99 ms':>8} {'failed':>9} {'cut':>6} {'median x':>9} {'p99 x':>7}")
    for result in results:
        print(f"{result.name:34} {result.median_ms:10.2f} {result.p99_ms:8.2f} "
              f"{result.failed:4d}/{result.sent:<4d} {result.cut:6d} "
              f"{result.median_ms / base.median_ms:9.2f} {result.p99_ms / base.p99_ms:7.2f}")


if __name__ == "__main__":
    main()
