"""Volume content sources: a local path, a file:// URL or an http(s) URL.

Content is streamed, never read whole into memory: a local file is read in
chunks, an HTTP body is uploaded as it arrives when the server sends a
Content-Length (otherwise it is spooled to a temporary file first, because
virStorageVolUpload needs the length up front).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator
from urllib.parse import unquote, urlsplit

from .errors import ProviderError

CHUNK = 1 << 20
_PATH = ("create", "content", "url")


@dataclass(frozen=True)
class ContentSource:
    """A parsed `create.content.url`."""

    url: str
    local_path: Path | None  # set for an absolute path or a file:// URL

    @property
    def is_local(self) -> bool:
        """True when the bytes come from this machine's filesystem."""
        return self.local_path is not None


def parse(url: str) -> ContentSource:
    """Classify a content URL; reject what we cannot fetch."""
    parts = urlsplit(url)
    if parts.scheme == "" and url.startswith("/"):
        return ContentSource(url, Path(url))
    if parts.scheme == "file":
        return ContentSource(url, Path(unquote(parts.path)))
    if parts.scheme in ("http", "https"):
        return ContentSource(url, None)
    raise ProviderError(
        "Unsupported volume content URL",
        f"{url!r} is neither an absolute path, a file:// URL nor an http(s) URL.", _PATH)


def local_size(src: ContentSource) -> int:
    """Size in bytes of a local source, with an actionable error if missing."""
    assert src.local_path is not None
    try:
        return src.local_path.stat().st_size
    except OSError as exc:
        raise ProviderError("Volume content file is not readable",
                            f"{src.local_path}: {exc.strerror}. Create the file (or fix the path) "
                            "before applying.", _PATH) from exc


def local_sha256(src: ContentSource) -> str:
    """Hex SHA-256 of a local source."""
    assert src.local_path is not None
    h = hashlib.sha256()
    with open(src.local_path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def fetch(src: ContentSource, timeout: float = 60.0) -> Iterator[tuple[IO[bytes], int]]:
    """Open the content for reading; yields (file object, length in bytes)."""
    if src.local_path is not None:
        size = local_size(src)
        with open(src.local_path, "rb") as f:
            yield f, size
        return
    import urllib.error
    import urllib.request

    try:
        resp = urllib.request.urlopen(src.url, timeout=timeout)  # noqa: S310 (scheme checked in parse)
    except (urllib.error.URLError, OSError) as exc:
        raise ProviderError("Cannot download volume content",
                            f"{src.url}: {exc}. Check the URL and this host's network access.", _PATH) from exc
    with resp:
        length = resp.headers.get("Content-Length")
        if length is not None:
            yield resp, int(length)
            return
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(resp, spool, CHUNK)
            size = spool.tell()
            spool.seek(0)
            yield spool, size


def upload(conn, vol, f: IO[bytes], size: int) -> None:
    """Stream `size` bytes from `f` into a libvirt volume."""
    stream = conn.newStream(0)
    vol.upload(stream, 0, size, 0)
    try:
        stream.sendAll(lambda _st, nbytes, fobj: fobj.read(min(nbytes, CHUNK)), f)
        stream.finish()
    except BaseException:
        with contextlib.suppress(Exception):
            stream.abort()
        raise
