"""The HTTP transport against hostile clients, with raw sockets on a real server (api/transport.py):
body limits decided before a body is read, unambiguous framing, slow and greedy clients cut off."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from api.config import parse_config
from api.identity.tokens import TokenSigner, load_key
from apitest import Live, qcow2_file, serve_root  # noqa: F401 (fixtures)
from provisioner.errors import InputError

JSON_LIMIT = 65536
PER_CLIENT = 4
# Small limits so that each case takes a second or two; every other limit keeps its default.
CONFIG = f"""max_json_body: {JSON_LIMIT}
header_timeout: 1
body_timeout: 1
body_min_rate: 1000
max_connections_per_client: {PER_CLIENT}
"""
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
WAIT = 10  # seconds a socket read waits before the test calls the connection hung


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_root(tmp_path_factory.mktemp("transport") / "root", CONFIG) as server:
        yield server


def _port(live: Live) -> int:
    return int(live.url.rsplit(":", 1)[1])


def _connect(live: Live, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the server from `source` (any 127.0.0.0/8 address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", _port(live)))
    return sock


def _read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang fails the test)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise AssertionError(f"the server kept the connection open; it sent {data[:200]!r}") from None
        if not chunk:
            return data
        data += chunk


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (EOF or reset waiting on our side, nothing else)."""
    # poll, not select: select() refuses descriptors past 1024, which a long test process reaches.
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def _statuses(data: bytes) -> list[int]:
    return [int(code) for code in STATUS.findall(data)]


def _body(data: bytes) -> dict:
    return json.loads(data.partition(b"\r\n\r\n")[2])


def _headers(method: str, path: str, *lines: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *lines, "", ""]).encode()


def _expired_token(live: Live) -> str:
    signer = TokenSigner(load_key(live.layout.root / "api" / "token.key"), ttl=-60)
    return signer.issue("u", "alice", "p", "demo", ("member",))[0]


# --- body limits before the body is read ------------------------------------------------------------------


def _revoked_token(live: Live) -> str:
    token = live.token("alice")
    revoked = requests.delete(f"{live.url}/identity/v3/auth/tokens", timeout=WAIT,
                              headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert revoked.status_code == 204, revoked.text
    return token


@pytest.mark.parametrize("token", [None, "forged.signature", "expired", "revoked"])
def test_image_upload_without_valid_token_refused_before_body(guarded: Live, token: str | None) -> None:
    """A 100 MB image upload without a valid token: 413 on the headers alone, no 100 Continue, closed."""
    lines = ["Content-Length: 100000000", "Expect: 100-continue", "Content-Type: application/octet-stream"]
    made = {"expired": _expired_token, "revoked": _revoked_token}
    if token:
        lines.append(f"X-Auth-Token: {made[token](guarded) if token in made else token}")
    with _connect(guarded) as sock:
        sock.sendall(_headers("PUT", "/image/v2/images/0b5e0f3c-0000-4000-8000-000000000000/file", *lines))
        data = _read_to_close(sock)
    assert _statuses(data) == [413], data[:300]
    message = _body(data)["error"]["message"]
    assert f"exceeds the limit of {JSON_LIMIT}" in message and "X-Auth-Token" in message, message


def test_image_upload_without_token_reads_little(guarded: Live) -> None:
    """Streaming the 100 MB anyway: the server answers 413 and closes, having taken in a fraction of it."""
    size = 100_000_000
    accepted = 0
    sock = _connect(guarded)

    def push() -> None:
        nonlocal accepted
        block = b"\0" * 65536
        try:
            while accepted < size:
                accepted += sock.send(block[:size - accepted])
        except OSError:  # the server closed the connection: what this test expects
            pass

    sock.sendall(_headers("PUT", "/image/v2/images/0b5e0f3c-0000-4000-8000-000000000000/file",
                          f"Content-Length: {size}"))
    pusher = threading.Thread(target=push)
    pusher.start()
    try:
        data = _read_to_close(sock)
    finally:
        with contextlib.suppress(OSError):  # unblocks the pusher if the server has not reset the connection
            sock.shutdown(socket.SHUT_RDWR)
        pusher.join(WAIT)
        sock.close()
    assert _statuses(data) == [413], data[:300]
    # What the kernel's socket buffers take in on loopback (a few MB), far from the whole body.
    assert accepted < size // 4, accepted


@pytest.mark.parametrize("path", ["/compute/v2.1/servers", "/network/v2.0/networks", "/identity/v3/auth/tokens"])
def test_json_body_over_limit_refused_before_body(guarded: Live, path: str) -> None:
    """Declared over max_json_body: 413 in the service's error body on the headers alone, token or not."""
    token = guarded.token("alice")
    for lines in ([], [f"X-Auth-Token: {token}"]):
        with _connect(guarded) as sock:
            sock.sendall(_headers("POST", path, f"Content-Length: {JSON_LIMIT + 1}",
                                  "Content-Type: application/json", *lines))
            data = _read_to_close(sock)
        assert _statuses(data) == [413], data[:300]
        error = _body(data)
        inner = error.get("NeutronError") or error.get("overLimit") or error.get("error")
        assert f"exceeds the limit of {JSON_LIMIT}" in inner["message"], error


def test_chunked_json_body_over_limit_refused_as_it_arrives(guarded: Live) -> None:
    """A chunked body is counted as it arrives: 413 once over the limit, before its last chunk."""
    token = guarded.token("alice")
    with _connect(guarded) as sock:
        sock.sendall(_headers("POST", "/compute/v2.1/servers", "Transfer-Encoding: chunked",
                              "Content-Type: application/json", f"X-Auth-Token: {token}"))
        sock.sendall(b"%x\r\n" % (JSON_LIMIT + 1) + b"a" * (JSON_LIMIT + 1) + b"\r\n")  # no last chunk
        data = _read_to_close(sock)
    assert _statuses(data) == [413], data[:300]
    assert "exceeds the limit" in _body(data)["overLimit"]["message"]


def test_endless_chunk_size_line_refused(guarded: Live) -> None:
    """A chunk-size line that never ends (waitress keeps it in memory, and re-joins it on every read)."""
    with _connect(guarded) as sock:
        sock.sendall(_headers("POST", "/compute/v2.1/servers", "Transfer-Encoding: chunked"))
        sock.sendall(b"1;" + b"a" * 8192)
        data = _read_to_close(sock)
    assert _statuses(data) == [400], data[:300]


def test_chunked_framing_overhead_refused(guarded: Live) -> None:
    """40,000 one-byte chunks: under max_json_body once decoded, but 240,000 bytes on the wire."""
    with _connect(guarded) as sock:
        sock.sendall(_headers("POST", "/compute/v2.1/servers", "Transfer-Encoding: chunked"))
        sock.sendall(b"1\r\na\r\n" * 40_000 + b"0\r\n\r\n")
        data = _read_to_close(sock)
    assert _statuses(data) == [400], data[:300]
    assert "chunked framing" in _body(data)["badRequest"]["message"]


def test_authenticated_image_upload_over_json_limit(guarded: Live, qcow2_file: Path) -> None:
    """With a valid token the image-data route takes more than max_json_body, declared or chunked."""
    content = qcow2_file.read_bytes()
    assert len(content) > JSON_LIMIT
    headers = {"X-Auth-Token": guarded.token("alice")}
    for name, data in (("declared", content), ("chunked", iter([content[:JSON_LIMIT], content[JSON_LIMIT:]]))):
        image = requests.post(f"{guarded.url}/image/v2/images", headers=headers, timeout=WAIT,
                              json={"name": name, "disk_format": "qcow2", "container_format": "bare"}).json()
        upload = requests.put(f"{guarded.url}/image/v2/images/{image['id']}/file", data=data, timeout=WAIT,
                              headers={**headers, "Content-Type": "application/octet-stream"})
        assert upload.status_code == 204, upload.text
        shown = requests.get(f"{guarded.url}/image/v2/images/{image['id']}", headers=headers, timeout=WAIT).json()
        assert shown["status"] == "active" and shown["size"] == len(content), shown


def test_authenticated_upload_gets_100_continue(guarded: Live, qcow2_file: Path) -> None:
    """With a valid token and Expect: 100-continue, the server asks for the body, then takes it."""
    content = qcow2_file.read_bytes()
    token = guarded.token("alice")
    image = requests.post(f"{guarded.url}/image/v2/images", headers={"X-Auth-Token": token}, timeout=WAIT,
                          json={"name": "continued", "disk_format": "qcow2", "container_format": "bare"}).json()
    with _connect(guarded) as sock:
        sock.sendall(_headers("PUT", f"/image/v2/images/{image['id']}/file", f"Content-Length: {len(content)}",
                              "Expect: 100-continue", "Content-Type: application/octet-stream",
                              f"X-Auth-Token: {token}", "Connection: close"))
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(content)
        assert _statuses(_read_to_close(sock)) == [204]


def test_requests_client_reads_the_413(guarded: Live) -> None:
    """A stock client sending an oversized body in full still reads the answer, not a reset."""
    resp = requests.post(f"{guarded.url}/compute/v2.1/servers", data=b"x" * (4 << 20), timeout=WAIT,
                         headers={"X-Auth-Token": guarded.token("alice"), "Content-Type": "application/json"})
    assert resp.status_code == 413 and "exceeds the limit" in resp.json()["overLimit"]["message"]


# --- framing: no request smuggling --------------------------------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
TOKENS = "POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
AMBIGUOUS = {
    "content-length and chunked": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked and content-length": "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "chunked, tab before value": "Transfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "chunked twice in one field": "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "chunked in two fields": "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "empty transfer-encoding": "Transfer-Encoding: \r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "folded transfer-encoding": "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "folded other header": "X-Note: a\r\n b\r\nContent-Length: 2\r\n\r\n{}",
    "underscore transfer_encoding": "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "underscore content_length": "Content_Length: 5\r\nContent-Length: 2\r\n\r\n{}",
    "two different content-lengths": "Content-Length: 5\r\nContent-Length: 6\r\n\r\n0\r\n\r\n",
    "two equal content-lengths": "Content-Length: 5\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "space before colon": "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("framing", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_ambiguous_framing_is_400_and_closes(guarded: Live, framing: str) -> None:
    """Answered 400 once, then closed: the request behind it on the connection is never answered."""
    with _connect(guarded) as sock:
        sock.sendall(TOKENS.encode() + framing.encode() + SMUGGLED)
        data = _read_to_close(sock)
    assert _statuses(data) == [400], data
    assert "smuggled" not in data.decode("latin-1")
    assert _body(data)["error"]["code"] == 400


def test_transfer_encoding_on_http_1_0_is_400(guarded: Live) -> None:
    request = ("POST /identity/v3/auth/tokens HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
               "Content-Length: 5\r\n\r\n0\r\n\r\n")
    with _connect(guarded) as sock:
        sock.sendall(request.encode() + SMUGGLED)
        data = _read_to_close(sock)
    assert _statuses(data) == [400], data


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity", "xchunked"])
def test_unsupported_transfer_coding_is_501_and_closes(guarded: Live, coding: str) -> None:
    with _connect(guarded) as sock:
        sock.sendall(f"{TOKENS}Transfer-Encoding: {coding}\r\n\r\n0\r\n\r\n".encode() + SMUGGLED)
        data = _read_to_close(sock)
    assert _statuses(data) == [501], data


def test_error_bodies_do_not_echo_the_request(guarded: Live) -> None:
    """waitress quotes a malformed line into its error text: not echoed past the message's own words."""
    secret = "Zm9yZ2VkLXNlY3JldA"
    with _connect(guarded) as sock:
        sock.sendall(f"{TOKENS}X-Note: a\r\n {secret}\r\n\r\n".encode())
        data = _read_to_close(sock)
    assert _statuses(data) == [400] and secret not in data.decode("latin-1"), data


# --- slow clients -----------------------------------------------------------------------------------------


def _trickle(sock: socket.socket, data: bytes, other: Live) -> tuple[bool, int]:
    """Send `data` a byte every 0.2 s (bounded) until the server closes; meanwhile another client is served.
    Returns whether the server closed the connection and the other client's status."""
    served = 0
    for index, byte in enumerate(data):
        if index == 2:
            served = requests.get(f"{other.url}/identity/v3", timeout=WAIT).status_code
        if _closed_by_server(sock):
            return True, served
        try:
            sock.send(bytes([byte]))
        except OSError:
            return True, served
        time.sleep(0.2)
    return _closed_by_server(sock), served


def test_slow_header_sender_cut_off(guarded: Live) -> None:
    """Headers a byte every 0.2 s: cut off after header_timeout (1 s) while another client is served."""
    with _connect(guarded) as sock:
        closed, served = _trickle(sock, _headers("GET", "/identity", *[f"X-Pad-{n}: {n}" for n in range(10)]), guarded)
    assert closed, "a slow header sender kept its connection past header_timeout"
    assert served == 200


def test_silent_connection_cut_off(guarded: Live) -> None:
    """A connection that never sends a byte is cut after header_timeout too."""
    with _connect(guarded) as sock:
        assert _read_to_close(sock) == b""


def test_slow_body_sender_cut_off(guarded: Live) -> None:
    """Body a byte every 0.2 s (under body_min_rate): cut off after body_timeout while another client is served."""
    with _connect(guarded) as sock:
        sock.sendall(_headers("POST", "/identity/v3/auth/tokens", "Content-Length: 200",
                              "Content-Type: application/json"))
        closed, served = _trickle(sock, b" " * 200, guarded)
    assert closed, "a slow body sender kept its connection past body_timeout"
    assert served == 200


def test_keep_alive_connection_serves_several_requests(guarded: Live) -> None:
    """The deadlines count per request: a client using one connection for several requests is not cut."""
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{guarded.url}/identity/v3", timeout=WAIT).status_code == 200
            time.sleep(0.7)  # idle between requests does not count against header_timeout (1 s)


# --- connections per client and in total -----------------------------------------------------------------

# Slow clients are not cut by header_timeout here (60 s): only the connection limits act.
CROWDED = f"header_timeout: 60\nmax_connections: 100\nmax_connections_per_client: {PER_CLIENT}\n"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_root(tmp_path_factory.mktemp("crowded") / "root", CROWDED) as server:
        yield server


def _served(sock: socket.socket, path: str = "/identity/v3") -> bool:
    """Send one request on `sock` and whether it was answered (the connection then stays open)."""
    data = b""
    try:
        sock.sendall(_headers("GET", path))
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return False
    return STATUS.match(data) is not None


def _content_length(data: bytes) -> int:
    found = re.search(rb"\r\nContent-Length: (\d+)\r\n", data, re.IGNORECASE)
    return int(found.group(1)) if found else 0


def _slow(live: Live, source: str) -> socket.socket:
    """A connection from `source` that sent the start of a request and waits."""
    sock = _connect(live, source)
    sock.sendall(b"GET /identity/v3 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return sock


def test_connections_over_per_client_limit_shed(crowded: Live) -> None:
    """An address holds at most max_connections_per_client (4) connections: each one over that closes
    its longest-waiting one (a slow client does not lock out others on its address, as on loopback
    every local client is 127.0.0.1); another address is served meanwhile."""
    first = [_slow(crowded, "127.0.0.5") for _ in range(PER_CLIENT)]
    later = [_slow(crowded, "127.0.0.5") for _ in range(PER_CLIENT)]
    try:
        for sock in first:
            assert _read_to_close(sock) == b""
        with _connect(crowded, "127.0.0.6") as other:
            assert _served(other)
        assert not any(_closed_by_server(sock) for sock in later)
        with _connect(crowded, "127.0.0.5") as again:
            assert _served(again)
        assert _read_to_close(later[0]) == b""
    finally:
        for sock in first + later:
            sock.close()


def test_idle_connections_shed_before_waiting_ones(crowded: Live) -> None:
    """Over the per-client limit, a connection idle between requests goes before one waiting on its client."""
    idle = [_connect(crowded, "127.0.0.7") for _ in range(2)]
    try:
        assert all(_served(sock) for sock in idle)
        waiting = [_slow(crowded, "127.0.0.7") for _ in range(PER_CLIENT - 2)]
        newer = [_slow(crowded, "127.0.0.7") for _ in range(2)]
        for sock in idle:
            assert _read_to_close(sock) == b""
        assert not any(_closed_by_server(sock) for sock in waiting + newer)
    finally:
        for sock in idle + waiting + newer:
            sock.close()


def test_full_server_sheds_waiting_connections(crowded: Live) -> None:
    """120 connections from 30 addresses sending partial headers fill max_connections (100): a new client
    is still served, as the longest-waiting connections are shed."""
    slow = []
    try:
        for index in range(120):
            slow.append(_slow(crowded, f"127.0.0.{10 + index % 30}"))
        assert requests.get(f"{crowded.url}/identity/v3", timeout=WAIT).status_code == 200
        assert _read_to_close(slow[0]) == b""
    finally:
        for sock in slow:
            sock.close()


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["header_timeout", "body_timeout", "idle_timeout"])
@pytest.mark.parametrize("value", [0, -1, "10", True, float("inf"), None])
def test_bad_timeouts_named(key: str, value: object) -> None:
    with pytest.raises(InputError, match=f"config.yaml: key '{key}' must be a number of seconds above 0"):
        parse_config({key: value}, "config.yaml")


@pytest.mark.parametrize("key", ["max_connections", "max_connections_per_client", "body_min_rate"])
@pytest.mark.parametrize("value", [-1, "32", True, 2.5, None])
def test_bad_counts_named(key: str, value: object) -> None:
    with pytest.raises(InputError, match=f"config.yaml: key '{key}'"):
        parse_config({key: value}, "config.yaml")


def test_transport_defaults() -> None:
    config = parse_config({}, "config.yaml")
    assert (config.header_timeout, config.body_timeout, config.body_min_rate, config.idle_timeout,
            config.max_connections, config.max_connections_per_client) == (10.0, 20.0, 16384, 120.0, 256, 32)
