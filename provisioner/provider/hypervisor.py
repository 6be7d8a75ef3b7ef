"""Access to libvirt for the resources: one interface, real or simulated.

Resources never open connections themselves. They ask for `reading()` (a
connection to look at) or `writing()` (a `Session` to change things through).
For a real URI both hand out one long-lived connection. For a file-backed
`test:///ABS/PATH.xml` URI, `writing()` is a locked transaction on the node
file (see simulator.py) and `reading()` a fresh connection on it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from . import simulator
from .errors import ProviderError

DEFAULT_URI = "qemu:///system"


@dataclass
class Session:
    """A connection to change things through, plus how content gets in."""

    conn: Any
    sim: simulator.SimSession | None = None

    @property
    def simulated(self) -> bool:
        """True on the file-backed test driver, which cannot upload bytes."""
        return self.sim is not None


def _quiet_libvirt() -> Any:
    import libvirt

    # libvirt prints every error to stderr by default; we report them as
    # diagnostics instead, and stderr noise would land in Terraform's log.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


class Hypervisor:
    """The libvirt endpoint named by the provider's `uri`."""

    def __init__(self, uri: str | None):
        self.uri = uri or DEFAULT_URI
        self._node = simulator.node_file(self.uri)
        self._conn: Any = None
        self._lock = threading.Lock()

    @property
    def simulated(self) -> bool:
        """True for a file-backed test:/// URI."""
        return self._node is not None

    @property
    def node(self) -> simulator.SimulatedNode:
        """The simulated node (only when `simulated`)."""
        assert self._node is not None
        return simulator.SimulatedNode(self._node)

    def _shared(self) -> Any:
        libvirt = _quiet_libvirt()
        with self._lock:
            if self._conn is None:
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as exc:
                    raise ProviderError(
                        "Cannot connect to libvirt",
                        f"Opening {self.uri!r} failed: {exc}\n\nCheck the provider's `uri`, that libvirtd "
                        "is running, and that this user may use it (e.g. member of the libvirt group, "
                        "or SSH key access for qemu+ssh://).", ("uri",)) from exc
            return self._conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        """A connection to look at the hypervisor's current state."""
        if self._node is None:
            yield self._shared()
            return
        _quiet_libvirt()
        with simulator.SimulatedNode(self._node).snapshot() as conn:
            yield conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A session whose changes persist (atomically, for the simulator)."""
        if self._node is None:
            yield Session(self._shared())
            return
        _quiet_libvirt()
        with simulator.SimulatedNode(self._node).transaction() as sim:
            yield Session(sim.conn, sim)

    def close(self) -> None:
        """Close the shared connection, if any."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
