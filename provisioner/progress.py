"""Visible progress on long steps: what is being done and for how long."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO


class Progress:
    """Prints `==> step` lines; on a terminal the elapsed time ticks while it runs."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def say(self, message: str) -> None:
        """Print one line of information."""
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run a block as a named step, reporting its elapsed time (and failure)."""
        start = time.monotonic()
        stop = threading.Event()
        ticker = None
        if self.quiet:
            pass
        elif self.tty:
            def tick() -> None:
                while not stop.wait(0.5):
                    self.stream.write(f"\r==> {what} ({time.monotonic() - start:.0f}s)")
                    self.stream.flush()
            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
        else:
            self.say(f"==> {what}")
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            if ticker:
                ticker.join()
            if not self.quiet:
                prefix = f"\r==> {what}" if self.tty else "   "
                print(f"{prefix} {'done' if ok else 'FAILED'} in {time.monotonic() - start:.1f}s",
                      file=self.stream, flush=True)
