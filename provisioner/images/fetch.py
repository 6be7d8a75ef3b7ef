"""Opening an image source, a local file or an http(s) URL, as a stream of known length."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import urlsplit

from provisioner.images.errors import FetchError
from provisioner.images.names import is_url

TIMEOUT = 60.0  # seconds without progress before a download is given up


@dataclass(frozen=True)
class Opened:
    """An open source: its stream, its size if announced, and how to name it."""

    stream: BinaryIO
    size: int | None
    source: str


@contextmanager
def open_source(source: str, name: str, timeout: float = TIMEOUT) -> Iterator[Opened]:
    """Open a local file or an http(s) URL for streaming; errors name `name` and the reason."""
    opener = _open_url if is_url(source) else _open_file
    with opener(source, name, timeout) as opened:
        yield opened


@contextmanager
def _open_file(source: str, name: str, timeout: float) -> Iterator[Opened]:
    path = Path(source).expanduser().absolute()
    try:
        # Checked before opening too: opening a FIFO would block, a device would never end.
        if not stat.S_ISREG(path.stat().st_mode):
            raise FetchError(name, f"{path} is not a regular file")
        stream = path.open("rb", buffering=0)
    except OSError as exc:
        raise FetchError(name, f"cannot read {path}: {exc.strerror or exc}") from None
    with stream:
        yield Opened(stream, os.fstat(stream.fileno()).st_size, str(path))


@contextmanager
def _open_url(url: str, name: str, timeout: float) -> Iterator[Opened]:
    # Imported here: with ssl and email they cost ~0.03 s, and every `provision DOMAIN` imports this module.
    import http.client
    import urllib.error
    import urllib.request

    if not urlsplit(url).hostname:
        raise FetchError(name, f"{url!r} is a URL without a host")
    # identity: the bytes served must be the image itself, never a compressed transfer of it.
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity",
                                                   "User-Agent": "provisioner-image-import"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(name, f"HTTP error {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        raise FetchError(name, f"cannot fetch {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FetchError(name, f"cannot fetch {url}: {exc or type(exc).__name__}") from None
    with response:
        # http.client's `length`: the Content-Length, or None when chunked or unannounced.
        yield Opened(response, response.length, url)
