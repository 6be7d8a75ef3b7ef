"""The NoCloud seed ISO (volume label `cidata`), built in memory with pycdlib."""

from __future__ import annotations

import io
import threading
import time
import types
from contextlib import contextmanager
from typing import Iterator

import pycdlib
import pycdlib.dates
import pycdlib.headervd
import pycdlib.pycdlib

from provisioner.render.cloudinit import CloudInit

# pycdlib stamps time.time() into descriptors and records; a seed must be
# byte-stable or every re-apply would replace the seed volume.
FIXED_EPOCH = 946684800  # 2000-01-01T00:00:00Z
_CLOCK_USERS = (pycdlib.pycdlib, pycdlib.headervd, pycdlib.dates)
_clock_lock = threading.Lock()


@contextmanager
def _fixed_clock() -> Iterator[None]:
    # A stand-in for the time module: a frozen clock, and UTC so the host's
    # time zone does not leak into the image either.
    fixed = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    fixed.time = lambda: float(FIXED_EPOCH)
    fixed.localtime = time.gmtime
    with _clock_lock:
        saved = [module.time for module in _CLOCK_USERS]
        for module in _CLOCK_USERS:
            module.time = fixed
        try:
            yield
        finally:
            for module, original in zip(_CLOCK_USERS, saved):
                module.time = original


def build_seed_iso(docs: CloudInit) -> bytes:
    """Return the ISO image bytes holding user-data, meta-data and network-config."""
    files = (
        ("USERDATA.;1", "user-data", docs.user_data),
        ("METADATA.;1", "meta-data", docs.meta_data),
        ("NETWORKC.;1", "network-config", docs.network_config),
    )
    out = io.BytesIO()
    with _fixed_clock():
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
        for iso_name, name, data in files:
            iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name}", rr_name=name, joliet_path=f"/{name}")
        iso.write_fp(out)
        iso.close()
    return out.getvalue()
