"""Digests of image content: the ones a user may check, computed in parallel."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Iterable, Mapping

from provisioner.images.errors import DigestMismatch, ImageInputError

if TYPE_CHECKING:
    from concurrent.futures import Future

# md5 is Glance's `checksum`, sha512 its `os_hash_value`; sha256 identifies content here.
ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
IDENTITY = "sha256"
HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


def parse_expected(name: str, digests: Mapping[str, str]) -> dict[str, str]:
    """Validate user-given digests ({algorithm: hex}); return them lower-cased."""
    expected = {}
    for algorithm, value in digests.items():
        if algorithm not in HEX_LENGTH:
            raise ImageInputError(f"image {name!r}", f"unknown digest algorithm {algorithm!r}; "
                                  f"use {', '.join(ALGORITHMS)}")
        hexdigest = str(value).strip().lower()
        if len(hexdigest) != HEX_LENGTH[algorithm] or not _HEX.fullmatch(hexdigest):
            raise ImageInputError(f"image {name!r}", f"{algorithm} {value!r} is not a {algorithm} digest "
                                  f"({HEX_LENGTH[algorithm]} hex digits)")
        expected[algorithm] = hexdigest
    return expected


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """The algorithms to compute: the identity digest plus `algorithms`, in canonical order."""
    wanted = {IDENTITY, *algorithms}
    unknown = wanted - set(ALGORITHMS)
    if unknown:
        raise ValueError(f"unknown digest algorithm(s) {sorted(unknown)}; use {ALGORITHMS}")
    return tuple(a for a in ALGORITHMS if a in wanted)


def verify(name: str, source: str, expected: Mapping[str, str], actual: Mapping[str, str]) -> None:
    """Raise DigestMismatch naming every algorithm whose digest differs."""
    wrong = [f"{a} is {actual[a]}, expected {want}" for a, want in expected.items() if actual[a] != want]
    if wrong:
        raise DigestMismatch(name, f"digest mismatch for {source}: {'; '.join(wrong)}; nothing imported")


class ParallelHasher:
    """Feeds each buffer to every algorithm, each on its own thread, in order.

    hashlib releases the GIL on large buffers, so several digests cost about
    the wall time of the slowest one instead of their sum, and hashing overlaps
    the caller's I/O. The caller must not modify a buffer until the futures
    returned by `update` are done.
    """

    def __init__(self, algorithms: Iterable[str]):
        from concurrent.futures import ThreadPoolExecutor  # only an import hashes: not loaded by every provision

        # usedforsecurity=False: md5 and sha1 identify content here; FIPS builds refuse them otherwise.
        self._hashes = {a: hashlib.new(a, usedforsecurity=False) for a in algorithms}
        self._workers = {a: ThreadPoolExecutor(1, thread_name_prefix=f"hash-{a}") for a in self._hashes}

    def update(self, data: memoryview) -> list[Future[None]]:
        """Queue `data` for every algorithm; return the futures to wait on before reusing it."""
        return [self._workers[a].submit(h.update, data) for a, h in self._hashes.items()]

    def hexdigests(self) -> dict[str, str]:
        """Every digest, once all queued updates are done."""
        for worker in self._workers.values():
            worker.shutdown(wait=True)
        return {a: h.hexdigest() for a, h in self._hashes.items()}

    def close(self) -> None:
        """Stop the worker threads, dropping queued work."""
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
