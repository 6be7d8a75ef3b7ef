"""A server's console output: the serial log the hypervisor writes into the domain's workspace.

Only a local hypervisor can write there (provisioner.render.plan gives the
serial a log file then); on the simulator or a remote one there is none and
the output is empty.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.layout import Layout

# Read at most this much from the end of the log: a guest can print without bound.
TAIL_BYTES = 1 << 20


class ConsoleLog:
    """The console logs of the domains under one root."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def path(self, domain: str) -> Path:
        """Where the hypervisor writes the domain's serial console (docs/vms-layout.md)."""
        return self.layout.domain_dir(domain) / "logs" / "console.log"

    def tail(self, domain: str, lines: int | None) -> str:
        """The last `lines` lines (None or negative: all of the last TAIL_BYTES); empty while there is no log."""
        try:
            with self.path(domain).open("rb") as stream:
                size = stream.seek(0, 2)
                stream.seek(max(0, size - TAIL_BYTES))
                data = stream.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", errors="replace").replace("\x00", "")
        if lines is None or lines < 0:
            return text
        return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""
