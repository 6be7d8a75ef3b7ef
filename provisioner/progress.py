"""Visible progress on long steps and transfers: a live line on a terminal, plain lines elsewhere.

On a terminal (a tty whose TERM is not `dumb`) the current step or transfer is
one line rewritten in place with `\\r` and padded with spaces over what it
replaces; nothing else is ever written, no colour and no escape sequence, so
NO_COLOR holds by construction. Anywhere else (a pipe, a log, CI) every line is
a plain, complete line.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol, TextIO

REDRAW = 0.1  # a transfer's live line is redrawn at most ~10 times a second
TICK = 0.5  # a step's elapsed time is redrawn this often
PLAIN_STEP = 10  # without a terminal, a transfer reports each time it passes another 10 %
PLAIN_EVERY = 30.0  # ... or 30 s after its last line (the only report when the size is unknown)
RATE_WINDOW = 5.0  # seconds of samples behind the rate and ETA a live bar shows
MIN_BAR = 10  # narrower than this, a live transfer line shows its figures without the bar
FALLBACK_COLUMNS = 80


def live_terminal(stream: TextIO) -> bool:
    """Whether `stream` gets a live line: it is a terminal, and TERM does not say `dumb`."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return bool(tty) and os.environ.get("TERM") != "dumb"


def human_size(size: float) -> str:
    """Bytes as `512 B`, `68.4 KiB`, `312.0 MiB`, `2.0 GiB`."""
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GiB"


def clock(seconds: float) -> str:
    """A duration as `0:35` or `1:02:03`."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class _Live(Protocol):
    def render(self, columns: int) -> str: ...


class Progress:
    """Prints steps (`==> what`) and transfers (a byte bar) on `stream`; nothing at all when `quiet`."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = not quiet and live_terminal(self.stream)
        # One line on screen for everything live (steps nest, a transfer runs inside a step):
        # the innermost is drawn; say() prints above it.
        self._lock = threading.RLock()
        self._live: list[_Live] = []
        self._shown = 0  # characters of the live line now on screen
        self._reader_gone = False

    def say(self, message: str) -> None:
        """Print one line of information (above the live line, if any)."""
        if self.quiet:
            return
        with self._lock:
            self._clear()
            self._write(message + "\n")
            self._draw()

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run a block as a named step, reporting its elapsed time (and failure)."""
        if self.quiet:
            yield
            return
        line = _StepLine(what, time.monotonic())
        stop = threading.Event()
        ticker = None
        if self.tty:
            self._push(line)
            ticker = threading.Thread(target=self._tick, args=(line, stop), daemon=True)
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
            elapsed = f"{'done' if ok else 'FAILED'} in {time.monotonic() - line.start:.1f}s"
            if self.tty:
                self._pop(line, f"==> {what} {elapsed}")
            else:
                self.say(f"    {elapsed}")

    @contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Report a transfer of `total` bytes (None: unknown) as `label`.

        Yields the function to call with the bytes done so far after each
        chunk. On a terminal: a bar redrawn at most every REDRAW seconds whose
        final state stays on screen; elsewhere a line each PLAIN_STEP % or
        PLAIN_EVERY seconds, and none at the end (the caller prints the outcome).
        """
        if self.quiet:
            yield lambda done: None
            return
        meter = _Meter(label, total, time.monotonic())
        if self.tty:
            self._push(meter)
        update = self._live_update(meter) if self.tty else self._plain_update(meter)
        ok = False
        try:
            yield update
            ok = True
        finally:
            if self.tty:
                self._pop(meter, meter.render(self._columns(), finished=ok, failed=not ok))

    # -- transfers -------------------------------------------------------------

    def _live_update(self, meter: _Meter) -> Callable[[int], None]:
        last = [float("-inf")]

        def update(done: int) -> None:
            now = meter.record(done)
            if now - last[0] >= REDRAW:
                last[0] = now
                with self._lock:
                    self._draw()
        return update

    def _plain_update(self, meter: _Meter) -> Callable[[int], None]:
        last = [meter.start, 0]  # time of the last line, PLAIN_STEPs reported

        def update(done: int) -> None:
            now = meter.record(done)
            if meter.total and done >= meter.total:
                return  # the end: the caller's own line says it
            steps = done * 100 // meter.total // PLAIN_STEP if meter.total else 0
            if steps > last[1] or now - last[0] >= PLAIN_EVERY:
                last[0], last[1] = now, max(steps, last[1])
                self.say(meter.figures(now))
        return update

    # -- the live line -----------------------------------------------------------

    def _tick(self, line: _StepLine, stop: threading.Event) -> None:
        while not stop.wait(TICK):
            with self._lock:
                if self._live and self._live[-1] is line:
                    self._draw()

    def _push(self, item: _Live) -> None:
        with self._lock:
            self._live.append(item)
            self._draw()

    def _pop(self, item: _Live, final: str) -> None:
        """Replace the live line by `final`, kept whole (a newline ends it), then draw what is still live."""
        with self._lock:
            self._live.remove(item)
            self._clear()
            self._write(final + "\n")
            self._draw()

    def _draw(self) -> None:
        if not self._live:
            return
        columns = self._columns()
        # One column short of the width: a full line would wrap on some terminals and \r then misses it.
        text = self._live[-1].render(columns)[:max(columns - 1, 1)]
        self._write("\r" + text + " " * max(self._shown - len(text), 0))
        self._shown = len(text)

    def _clear(self) -> None:
        if self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def _write(self, text: str) -> None:
        if self._reader_gone:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            # `provision … | head`: the reader went away; the run it reports on goes on, unreported.
            self._reader_gone = True

    def _columns(self) -> int:
        """The stream's width: COLUMNS if set, else its terminal's, else 80."""
        env = os.environ.get("COLUMNS", "")
        if env.isdigit() and int(env) > 0:
            return int(env)
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or FALLBACK_COLUMNS
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size((FALLBACK_COLUMNS, 24)).columns


class _StepLine:
    """A step's live line: `==> what … 12 s`."""

    def __init__(self, what: str, start: float):
        self.what = what
        self.start = start

    def render(self, columns: int) -> str:
        return f"==> {self.what} … {time.monotonic() - self.start:.0f} s"


class _Meter:
    """The bytes of one transfer over time, and how they read."""

    def __init__(self, label: str, total: int | None, start: float):
        self.label = label
        self.total = total
        self.start = start
        self.done = 0
        self.samples: collections.deque[tuple[float, int]] = collections.deque([(start, 0)])

    def record(self, done: int) -> float:
        """Note `done` bytes now; returns now."""
        now = time.monotonic()
        self.done = done
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW:
            self.samples.popleft()
        return now

    def rate(self, now: float, overall: bool = False) -> float | None:
        """Bytes per second over the last RATE_WINDOW seconds (or since the start); None too soon to tell."""
        since, before = (self.start, 0) if overall else self.samples[0]
        return (self.done - before) / (now - since) if now - since >= REDRAW or overall and now > since else None

    def figures(self, now: float, finished: bool = False, failed: bool = False) -> str:
        """`label: 312.0 MiB / 2.0 GiB  15%  48.0 MiB/s  ETA 0:35` (at the end: `in 0:42`)."""
        parts = [human_size(self.done) if self.total is None else
                 f"{human_size(self.done)} / {human_size(self.total)}"]
        if self.total:
            parts.append(f"{self.done * 100 // self.total:3d}%")
        rate = self.rate(now, overall=finished or failed)
        if rate is not None:
            parts.append(f"{human_size(rate)}/s")
        if failed:
            parts.append(f"FAILED after {clock(now - self.start)}")
        elif finished:
            parts.append(f"in {clock(now - self.start)}")
        elif self.total and rate:
            parts.append(f"ETA {clock(max(self.total - self.done, 0) / rate)}")
        return f"{self.label}: {'  '.join(parts)}"

    def render(self, columns: int, finished: bool = False, failed: bool = False) -> str:
        """The figures, with a bar in the room left when the size is known."""
        text = self.figures(time.monotonic(), finished, failed)
        room = columns - 1 - len(text) - len("  []")
        if not self.total or room < MIN_BAR:
            return text
        filled = min(room, room * self.done // self.total)
        return f"{text}  [{'#' * filled}{'-' * (room - filled)}]"
