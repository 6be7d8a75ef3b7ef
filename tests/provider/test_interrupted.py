"""kill -9 of terraform in the middle of an apply, then a rerun: no duplicates, no orphans."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import Site
from .test_lifecycle import VOLUMES, inventory


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids.extend(int(k) for k in text)
    return kids


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and
                 "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
        time.sleep(0.1)
    return alive


@pytest.mark.parametrize("victim", ["terraform", "process-group"])
def test_kill9_mid_apply_then_rerun_converges(shared_applied: Site, victim: str) -> None:
    site = shared_applied
    ws = site.domain()
    # Hold each simulated commit open long enough to kill terraform inside it.
    ws.env["PROVISIONER_SIM_COMMIT_DELAY"] = "1.0"
    proc = ws.popen("apply", "-auto-approve")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "libvirt_domain.guest: Creating..." in line:
            break
    else:
        pytest.fail("apply ended before creating the domain:\n" + "".join(seen))
    time.sleep(0.4)  # the provider is now inside the domain's transaction
    providers = _children(proc.pid)
    assert providers, "no provider process under terraform"
    if victim == "terraform":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    # An orphaned provider finishes its operation, then exits by itself.
    assert _wait_gone(providers, timeout=15) == []

    del ws.env["PROVISIONER_SIM_COMMIT_DELAY"]
    ws.apply()
    inv = inventory(site)
    assert list(inv["domains"]) == ["example.test"]
    assert inv["volumes"] == VOLUMES
    code, out = ws.plan_exitcode()
    assert code == 0, out
    ws.destroy()
    assert inventory(site)["volumes"] == {"base-debian-12-0123456789ab.qcow2"}
