"""Imports stream in constant memory: a 64 MiB image never costs 64 MiB of RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imagetest import Route, _no_proxy, server  # noqa: F401
from provisioner.images.transfer import CHUNK

REPO = Path(__file__).resolve().parents[2]
SIZE = 64 << 20

CHILD = """
import json, sys
from pathlib import Path
from provisioner.images import ImageStore
from provisioner.layout import Layout
store = ImageStore(Layout(Path(sys.argv[1])))
sizes = [store.import_source(source, name).size for source, name in zip(sys.argv[2::2], sys.argv[3::2])]
# VmHWM, not ru_maxrss: after a vfork+exec, ru_maxrss starts at the parent's peak (here
# pytest's, holding the served body); VmHWM is this process's own address space's peak.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"sizes": sizes, "peak_kib": hwm}))
"""


def test_memory_stays_bounded(tmp_path: Path, server) -> None:
    image = tmp_path / "big.img"
    with image.open("wb") as stream:
        # Sparse, with data in a few chunks so the write path runs too.
        for offset in range(0, SIZE, 8 * CHUNK):
            stream.seek(offset)
            stream.write(os.urandom(CHUNK // 2))
        stream.truncate(SIZE)
    url = server.serve("/big.img", Route(image.read_bytes()))
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "root"), str(image), "local", url, "remote"],
                         check=True, capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    result = json.loads(out)
    assert result["sizes"] == [SIZE, SIZE]
    assert result["peak_kib"] < 100_000_000 // 1024, f"peak RSS {result['peak_kib'] / 1024:.0f} MiB"
