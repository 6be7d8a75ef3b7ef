"""Power actions through libvirt-python (Terraform does not model them).

On the simulated hypervisor the change goes through the simulator's
transaction so it is written back to its node file.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import libvirt

from api.compute.models import ACTIVE, PAUSED, SHUTOFF
from api.errors import Conflict
from provisioner.provider import simulator

POLL = 0.5


@contextlib.contextmanager
def connection(uri: str) -> Iterator[Any]:
    """A libvirt connection for one block of changes (a persisted transaction on the simulator)."""
    if simulator.node_file(uri) is not None:
        with simulator.transaction(uri) as session:
            yield session.conn
        return
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


def _stop(dom: Any, timeout: float) -> None:
    """ACPI shutdown, then power off if the guest has not stopped within `timeout` (like Nova)."""
    if not dom.isActive():
        return
    dom.shutdown()
    deadline = time.monotonic() + timeout
    while dom.isActive() and time.monotonic() < deadline:
        time.sleep(POLL)
    if dom.isActive():
        dom.destroy()


def power(uri: str, domain: str, action: str, stop_timeout: float) -> str:
    """Run `action` (stop, start, reboot, hard-reboot, pause, unpause) on the domain; return the new status."""
    with connection(uri) as conn:
        try:
            dom = conn.lookupByName(domain)
            if action == "stop":
                _stop(dom, stop_timeout)
                return SHUTOFF
            if action == "start":
                if not dom.isActive():
                    dom.create()
                return ACTIVE
            if action == "reboot":
                dom.reboot(0)
                return ACTIVE
            if action == "hard-reboot":
                dom.reset(0)
                return ACTIVE
            if action == "pause":
                dom.suspend()
                return PAUSED
            if action == "unpause":
                dom.resume()
                return ACTIVE
        except libvirt.libvirtError as exc:
            raise Conflict(f"{action} failed on {domain}: {exc.get_error_message()}") from None
    raise ValueError(f"unknown power action {action!r}")
