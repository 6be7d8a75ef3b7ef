"""The HTTP transport: waitress, held against hostile clients.

waitress buffers a whole request body before the app sees it, so limits the
app checks come too late. Here the limits act in waitress's own reading loop:

- Body size: decided once a request's headers are parsed. Only the Glance
  image-data route (`PUT /image/v2/images/{id}/file`) with a valid token may
  send up to `max_image_body`; every other body is refused at `max_json_body`
  before a byte of it is read (413, connection closed). Chunked bodies are
  counted as they arrive.
- Framing: a request with both Content-Length and Transfer-Encoding, a
  Transfer-Encoding other than one `chunked` (or on HTTP/1.0), a framing header
  spelled with `_`, or a folded header line is a 400 and the connection closes,
  so nothing after it on the connection (a smuggled request) is answered.
- Slow clients: a request's headers must arrive within `header_timeout`
  (counted from the connection's accept for its first request); its body within
  `body_timeout` plus one second per `body_min_rate` bytes received.
- Connections: an address holds at most `max_connections_per_client`. A new
  one over that sheds the address's connection that idles or waits longest on
  its client (or, when all of them are being served, is closed at once): the
  API listens on loopback, where every local client shares 127.0.0.1, so
  refusing the newest would lock legitimate clients out behind a slow one.
  At `max_connections` (per worker process), a new connection sheds one the
  same way, from any address; only when every connection is being served
  does the server stop accepting (new clients wait in the listen backlog).

Errors answer with the service's OpenStack error body (api.errors.error_body).
"""

from __future__ import annotations

import json
import math
import re
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import BadRequest as WaitressBadRequest
from waitress.utilities import RequestEntityTooLarge

from api.errors import ApiError, BadRequest, TooLarge, error_body

# The one route whose body may exceed max_json_body (Glance image data); falcon strips a trailing slash.
IMAGE_DATA = re.compile(r"/image/v2/images/[^/]+/file/?")
FRAMING_HEADERS = (b"content-length", b"transfer-encoding")
MAX_CHUNK_LINE = 4096  # bytes of one chunk-size line (with extensions) or of the trailer
MAX_FRAMING = 65536  # a chunked body may take 2 x its limit + this on the wire
MAINTENANCE_INTERVAL = 1  # seconds between checks of the deadlines (waitress's cleanup_interval)


@dataclass(frozen=True)
class TransportLimits:
    """The transport's limits (config.yaml keys of the same names)."""

    header_timeout: float
    body_timeout: float
    body_min_rate: int
    idle_timeout: float
    max_connections: int
    max_connections_per_client: int


@dataclass(frozen=True)
class BodyPolicy:
    """How many body bytes a request may send, from its method, path and token."""

    max_json_body: int
    max_image_body: int
    token_is_valid: Callable[[str | None], bool]

    def limit(self, method: str, path: str, token: str | None) -> tuple[int, str]:
        """The limit in bytes, and what to tell a client that exceeds it."""
        if method == "PUT" and IMAGE_DATA.fullmatch(path):
            if self.token_is_valid(token):
                return self.max_image_body, "max_image_body"
            return self.max_json_body, "image data needs a valid X-Auth-Token; without one: max_json_body"
        return self.max_json_body, "max_json_body"


def _scan_framing(header_plus: bytes) -> tuple[list[bytes], int]:
    """The Transfer-Encoding values and the number of Content-Length fields; ParsingError on ambiguous framing.

    waitress joins folded lines and repeated fields, and drops names with `_`:
    a proxy in front may read any of those differently, so they are refused.
    """
    encodings: list[bytes] = []
    lengths = 0
    for line in header_plus.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            raise ParsingError("folded header lines (obs-fold) are not accepted")
        name, _, value = line.partition(b":")
        name = name.lower()
        if name.replace(b"_", b"-") in FRAMING_HEADERS and b"_" in name:
            raise ParsingError("Content-Length and Transfer-Encoding must be spelled with '-'")
        if name == b"transfer-encoding":
            encodings.extend(part.strip(b" \t").lower() for part in value.split(b","))
        elif name == b"content-length":
            lengths += 1
    return encodings, lengths


class LimitedRequestParser(HTTPRequestParser):
    """waitress's request parser with unambiguous framing and a body limit chosen per request."""

    def __init__(self, adj: Adjustments, policy: BodyPolicy, started: float):
        super().__init__(adj)
        self.policy = policy
        self.started = started  # monotonic: since when this request's headers are awaited
        self.body_started: float | None = None
        self.body_limit = 0

    def parse_header(self, header_plus: bytes) -> None:
        encodings, lengths = _scan_framing(header_plus)
        super().parse_header(header_plus)
        if encodings and lengths:
            raise ParsingError("a request may not have both Content-Length and Transfer-Encoding")
        if encodings and self.version != "1.1":
            raise ParsingError("Transfer-Encoding needs HTTP/1.1")
        if encodings and encodings != [b"chunked"]:
            raise ParsingError("Transfer-Encoding must be exactly 'chunked'")
        if lengths > 1:
            raise ParsingError("Content-Length is given more than once")

    def received(self, data: bytes) -> int:
        """Feed `data`; on an error the rest of it is swallowed: the connection closes after the answer."""
        reading_headers = not self.headers_finished
        consumed = super().received(data)
        if self.error is None and self.body_rcv is not None:
            if reading_headers and self.headers_finished:
                self._start_body()
            elif not reading_headers and self.chunked:
                self._check_chunked()
        if self.error is None:
            return consumed
        # Refused before its body was read: no "100 Continue" (waitress would send one and
        # reopen the request), and nothing after it on this connection is parsed.
        self.expect_continue = False
        self.completed = True
        return len(data)

    def _start_body(self) -> None:
        self.body_started = time.monotonic()
        self.body_limit, name = self.policy.limit(self.command, self.path, self.headers.get("X_AUTH_TOKEN"))
        if not self.chunked and self.content_length > self.body_limit:
            self.error = RequestEntityTooLarge(f"request body of {self.content_length} bytes exceeds the limit "
                                               f"of {self.body_limit} ({name})")

    def _check_chunked(self) -> None:
        receiver = self.body_rcv
        if len(receiver) > self.body_limit:
            self.error = RequestEntityTooLarge(f"chunked request body exceeds the limit of {self.body_limit} bytes")
        elif self.body_bytes_received > 2 * self.body_limit + MAX_FRAMING:
            # Tiny chunks with long extensions: megabytes on the wire for a few body bytes.
            self.error = WaitressBadRequest("chunked framing takes more bytes than the body limit allows")
        elif len(receiver.control_line) > MAX_CHUNK_LINE or len(receiver.trailer) > MAX_CHUNK_LINE:
            self.error = WaitressBadRequest(f"a chunk-size line or the trailer exceeds {MAX_CHUNK_LINE} bytes")


class JsonErrorTask(ErrorTask):
    """waitress's error answers as the service's OpenStack error body, without echoing the request."""

    KINDS = {400: BadRequest.kind, 413: TooLarge.kind}

    def execute(self) -> None:
        error = self.request.error
        # waitress quotes the offending header or request line after ' "': not echoed.
        message = error.body.split(' "', 1)[0]
        service = getattr(self.request, "path", "").strip("/").split("/", 1)[0]
        body = json.dumps(error_body(service, error.code, self.KINDS.get(error.code, ApiError.kind),
                                     error.reason, message)).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GuardedChannel(HTTPChannel):
    """One client connection: requests parsed by LimitedRequestParser, with deadlines for slow clients."""

    error_task_class = JsonErrorTask

    def __init__(self, server: GuardedServer, sock: socket.socket, addr: tuple, adj: Adjustments,
                 map: dict | None = None):
        super().__init__(server, sock, addr, adj, map)
        self.limits = server.limits
        self.policy = server.policy
        self.accepted_at = time.monotonic()
        self.awaiting_first_request = True
        self.parser_class = self._new_parser

    def _new_parser(self, adj: Adjustments) -> LimitedRequestParser:
        # waitress makes a parser when a request's first byte arrives; the first request's
        # headers are awaited since the accept (a client that sends nothing is cut too).
        started = self.accepted_at if self.awaiting_first_request else time.monotonic()
        self.awaiting_first_request = False
        return LimitedRequestParser(adj, self.policy, started)

    def waiting_since(self) -> float | None:
        """Since when (monotonic) this connection waits for its client's request: None while it idles
        between requests, while a request is served and while it closes."""
        if self.requests or self.will_close or self.close_when_flushed:
            return None
        if self.request is not None:
            return self.request.started
        return self.accepted_at if self.awaiting_first_request else None

    def idle(self) -> bool:
        """Whether it idles between requests (waitress's channel_timeout bounds that)."""
        return not (self.requests or self.will_close or self.close_when_flushed or self.request is not None
                    or self.awaiting_first_request)

    def eviction_rank(self) -> tuple[int, float] | None:
        """Order in which connections go when some must (lowest first): idle ones, longest idle first
        (their clients reconnect transparently), then those waiting longest on their client; None
        for a connection being served."""
        if self.idle():
            return 0, self.last_activity
        since = self.waiting_since()
        return None if since is None else (1, since)

    def overdue(self, now: float) -> bool:
        """Whether the client is slower than the limits allow."""
        since = self.waiting_since()
        if since is None:
            return False
        request = self.request
        if request is None or request.body_started is None:
            return now - since > self.limits.header_timeout
        allowance = self.limits.body_timeout
        if self.limits.body_min_rate:
            allowance += request.body_bytes_received / self.limits.body_min_rate
        return now - request.body_started > allowance


def _shed_one(channels: list[GuardedChannel]) -> bool:
    """Close the first of `channels` in eviction order; False when all of them are being served."""
    ranked = [(rank, channel) for channel in channels if (rank := channel.eviction_rank()) is not None]
    if not ranked:
        return False
    min(ranked, key=lambda pair: pair[0])[1].will_close = True
    return True


class GuardedServer(TcpWSGIServer):
    """A waitress server on an already bound socket, with GuardedChannel connections and connection limits."""

    channel_class = GuardedChannel

    def __init__(self, app: Callable, sock: socket.socket, threads: int, limits: TransportLimits,
                 policy: BodyPolicy, ident: str):
        self.limits = limits
        self.policy = policy
        adj = Adjustments(threads=threads, ident=ident,
                          # The parser's own check (>=) must not fire before ours (>).
                          max_request_body_size=policy.max_image_body + 1,
                          channel_timeout=max(1, math.ceil(limits.idle_timeout)),
                          cleanup_interval=MAINTENANCE_INTERVAL,
                          # select() fails on descriptors over 1023: poll has no such limit.
                          asyncore_use_poll=True)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        super().__init__(app, map={}, _sock=sock, dispatcher=dispatcher, adj=adj, bind_socket=False,
                         sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        # waitress's own limit (stop accepting when full) is replaced by readable() below.
        self.adj.connection_limit = sys.maxsize

    def _open_channels(self) -> list[GuardedChannel]:
        return [channel for channel in self.active_channels.values() if not channel.will_close]

    def readable(self) -> bool:
        """Accept while under max_connections, or at it while some connection can be shed for the new one."""
        super().readable()  # runs maintenance() every MAINTENANCE_INTERVAL
        if not self.accepting:
            return False
        if len(self.active_channels) < self.limits.max_connections:
            return True
        return any(channel.eviction_rank() is not None for channel in self._open_channels())

    def handle_accept(self) -> None:
        """Accept a connection. At max_connections_per_client for its address, or at max_connections, one
        connection (of that address, or any) waiting longest on its client is shed for it; when all of
        them are being served, the new one is closed at once."""
        try:
            pair = self.accept()
            if pair is None:
                return
            conn, addr = pair
            self.set_socket_options(conn)
        except OSError:  # the client went away before the accept completed
            return
        channels = self._open_channels()
        held = [channel for channel in channels if channel.addr[0] == addr[0]]
        if len(held) >= self.limits.max_connections_per_client:
            full = held
        elif len(channels) >= self.limits.max_connections:
            full = channels
        else:
            full = []
        if full and not _shed_one(full):
            conn.close()
            return
        self.channel_class(self, conn, addr, self.adj, map=self._map)

    def maintenance(self, now: float) -> None:
        """Close idle (waitress's channel_timeout) and overdue connections."""
        super().maintenance(now)
        clock = time.monotonic()
        for channel in self.active_channels.values():
            if channel.overdue(clock):
                channel.will_close = True
