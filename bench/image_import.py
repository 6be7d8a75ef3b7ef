"""Image import throughput and peak memory, beside sha256sum of the same file.

Targets (issue #5): with --sha256 only, at least 0.8x the MB/s of `sha256sum`;
peak memory (ru_maxrss of the importing process) under 100 MB whatever the size.
Each import runs in a child process importing into a fresh root; the file is
served over loopback HTTP by this process for the URL cases.

Run: .venv/bin/python bench/image_import.py [--size-mib 1024] [--runs 1] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provisioner.images.digests import ALGORITHMS  # noqa: E402
from provisioner.images.store import ImageStore  # noqa: E402
from provisioner.layout import Layout  # noqa: E402


def child(source: str, root: str, digests_json: str) -> None:
    """In the child: import once, print the import's seconds and this process's peak RSS.

    Both ru_maxrss and VmHWM: after vfork+exec ru_maxrss starts at the parent's
    peak, VmHWM counts this process's own address space only.
    """
    store = ImageStore(Layout(Path(root)))
    start = time.perf_counter()
    store.import_source(source, "bench", json.loads(digests_json))
    seconds = time.perf_counter() - start
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "hwm_kib": hwm}))


class _Handler(http.server.BaseHTTPRequestHandler):
    path_to_serve: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        with self.path_to_serve.open("rb") as stream:
            self.send_response(200)
            self.send_header("Content-Length", str(os.fstat(stream.fileno()).st_size))
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(stream)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _make_file(path: Path, size: int) -> None:
    # Random content: no all-zero chunks for the import to skip, nothing compressible.
    block = os.urandom(4 << 20)
    with path.open("wb") as stream:
        for offset in range(0, size, len(block)):
            stream.write(block[:size - offset] if size - offset < len(block) else block)
            block = hashlib.sha512(block[:64]).digest() + block[64:]
        # Flushed now, so its writeback does not compete with the imports being measured.
        stream.flush()
        os.fsync(stream.fileno())


def _digests(path: Path) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in ALGORITHMS}
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(4 << 20), b""):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _timed(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _import(source: str, digests: dict[str, str], work: Path, runs: int) -> tuple[float, int, int]:
    times, maxrss, hwm = [], 0, 0
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(dir=work, prefix="root-"))
        try:
            out = subprocess.run([sys.executable, __file__, "--child", source, str(root), json.dumps(digests)],
                                 check=True, capture_output=True, text=True).stdout
        finally:
            shutil.rmtree(root)
        result = json.loads(out)
        times.append(result["seconds"])
        maxrss, hwm = max(maxrss, result["maxrss_kib"]), max(hwm, result["hwm_kib"])
    return statistics.median(times), maxrss, hwm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="image-bench-") as tmp:
        work = Path(tmp)
        image = work / "bench.img"
        _make_file(image, size)
        digests = _digests(image)  # also leaves the file in the page cache, as for sha256sum
        reference = _timed(["sha256sum", str(image)], max(args.runs, 2))
        # Context: OpenSSL (what hashlib uses) may have SHA extensions coreutils lacks.
        openssl = _timed(["openssl", "dgst", "-sha256", str(image)], max(args.runs, 2)) if shutil.which("openssl") else None
        _Handler.path_to_serve = image
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/bench.img"
        mb = size / 1e6
        print(f"{args.size_mib} MiB file, {os.cpu_count()} CPU(s), median of {args.runs} run(s); "
              f"imports include fsync of the stored file")
        print(f"{'case':38} {'seconds':>8} {'MB/s':>8} {'x sha256sum':>12} {'ru_maxrss':>10} {'VmHWM':>9}")
        print(f"{'sha256sum (reference)':38} {reference:8.2f} {mb / reference:8.0f} {1.0:12.2f}")
        if openssl:
            print(f"{'openssl dgst -sha256 (context)':38} {openssl:8.2f} {mb / openssl:8.0f} {reference / openssl:12.2f}")
        try:
            for label, source in (("file", str(image)), ("http 127.0.0.1", url)):
                for which, given in (("--sha256", {"sha256": digests["sha256"]}), ("all four digests", digests)):
                    seconds, maxrss, hwm = _import(source, given, work, args.runs)
                    print(f"{label + ', ' + which:38} {seconds:8.2f} {mb / seconds:8.0f} "
                          f"{reference / seconds:12.2f} {maxrss * 1024 / 1e6:7.1f} MB {hwm * 1024 / 1e6:6.1f} MB",
                          flush=True)
        finally:
            server.shutdown()
    print("targets: --sha256 at least 0.80x sha256sum; peak RSS under 100 MB")


if __name__ == "__main__":
    main()
