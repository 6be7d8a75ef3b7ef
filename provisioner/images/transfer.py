"""Streaming an image from a source into the store: hashed while copied, in constant memory."""

from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

from provisioner.images.digests import ParallelHasher
from provisioner.images.errors import FetchError, StoreError
from provisioner.images.formats import HEAD_SIZE, FormatInfo, detect

CHUNK = 4 * 1024 * 1024
# Buffers in flight: one being read while the others are still being hashed.
DEPTH = 3
_ZEROS = bytes(CHUNK)


@dataclass(frozen=True)
class Transferred:
    """What was copied: its length, its digests and its format."""

    size: int
    digests: dict[str, str]
    info: FormatInfo


def transfer(name: str, source: str, stream: BinaryIO, sink: int | None,
             algorithms: Iterable[str], size: int | None = None,
             on_bytes: Callable[[int], None] | None = None) -> Transferred:
    """Copy `stream` to the file descriptor `sink` (None: read and hash only).

    With `size`, exactly that many bytes are read (a WSGI input must not be
    read further) and fewer is a truncation; without, the stream is read to its
    end. The format is checked as soon as the header has arrived, so a foreign
    file fails before it is downloaded. All-zero chunks are left as holes.
    `on_bytes` is called with the bytes copied so far after each chunk.
    """
    hasher = ParallelHasher(algorithms)
    try:
        ring = [bytearray(CHUNK) for _ in range(DEPTH)]
        pending: list[list[Future[None]]] = [[] for _ in range(DEPTH)]
        head = bytearray()
        info: FormatInfo | None = None
        total = slot = 0
        while size is None or total < size:
            for future in pending[slot]:
                future.result()
            view = memoryview(ring[slot])[:CHUNK if size is None else min(CHUNK, size - total)]
            count = _fill(name, source, stream, view, total)
            if not count:
                break
            data = view[:count]
            if info is None:
                head += data[:HEAD_SIZE - len(head)]
                if len(head) == HEAD_SIZE:
                    info = detect(name, bytes(head))
            pending[slot] = hasher.update(data)
            if sink is not None:
                _write(name, sink, data)
            total += count
            slot = (slot + 1) % DEPTH
            if on_bytes is not None:
                on_bytes(total)
        if size is not None and total < size:
            raise FetchError(name, f"truncated download from {source}: got {total} of {size} bytes")
        if info is None:
            info = detect(name, bytes(head))
        if sink is not None:
            _extend(name, sink, total)
        return Transferred(total, hasher.hexdigests(), info)
    finally:
        hasher.close()


def _fill(name: str, source: str, stream: BinaryIO, view: memoryview, done: int) -> int:
    """Fill `view` from `stream`; fewer bytes only at the end of the stream."""
    # Imported here, not for every `provision DOMAIN` (with ssl and email ~0.03 s); loaded already when
    # `stream` is an HTTP response.
    import http.client

    filled = 0
    readinto = getattr(stream, "readinto", None)
    try:
        while filled < len(view):
            if readinto is not None:
                count = readinto(view[filled:])
            else:
                # Plain `read` streams (some WSGI inputs): one extra copy per chunk.
                block = stream.read(len(view) - filled)
                count = len(block)
                view[filled:filled + count] = block
            if not count:
                break
            filled += count
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(name, f"reading {source} failed after {done + filled} bytes: "
                               f"{exc or type(exc).__name__}") from None
    return filled


def _write(name: str, fd: int, data: memoryview) -> None:
    try:
        # Cheap first/last byte test before the full comparison: most chunks hold data.
        if not data[0] and not data[-1] and data.tobytes() == _ZEROS[:len(data)]:
            os.lseek(fd, len(data), os.SEEK_CUR)
            return
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        raise StoreError(name, f"writing to the image store failed: {exc.strerror or exc}") from None


def _extend(name: str, fd: int, size: int) -> None:
    """Give the file its full length when it ends in a hole (skipped zero chunks)."""
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        raise StoreError(name, f"writing to the image store failed: {exc.strerror or exc}") from None
