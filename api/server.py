"""Serving the app with waitress on 127.0.0.1.

The listening socket is bound before anything else, so several worker
processes can share it (`workers` > 1 forks after binding). Any process
serves any request: a token's signature is checked in memory, and what it
depends on that processes share (its user's credentials in config.yaml, the
revocation table in state.db) is cached per process until the shared change
counter of api/change_counter.py moves (at once for changes made through the
API or `provision users`) or for at most a second. A request with a token
already seen thus costs no file or database access while nothing changes.
waitress runs with the limits of api/transport.py (body sizes decided before
a body is read, unambiguous framing, slow clients cut off).

Under systemd's socket activation (provision-api.socket, see docs/service.md)
the listening socket comes from the service manager (sd_listen_fds: LISTEN_PID
and LISTEN_FDS, the socket at fd 3) instead of being bound here; it is shared
by the pre-forked workers the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable

from api.app import Api, create_api
from api.config import LISTEN_HOST, ApiConfig
from api.errors import Unauthorized
from api.identity.routes import token_verifier
from api.jobs.runner import JobRunner
from api.transport import BodyPolicy, GuardedServer, TransportLimits
from provisioner.errors import ProvisionError
from provisioner.layout import Layout, restrict_umask
from provisioner.postboot.worker import BackgroundWorker

HOST = LISTEN_HOST
LISTEN_FDS_START = 3  # sd_listen_fds(3): the first passed file descriptor
log = logging.getLogger("api")
# waitress warns on every request queued while all its threads are busy: under load that
# is one log line per request, costing more than the request.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ProvisionError(f"cannot listen on {HOST}:{port}: {exc.strerror} "
                             "(is another server running there? choose another --port)") from None
    sock.listen(1024)
    return sock


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd passed to this process (sd_listen_fds protocol), or None.

    The variables are removed either way, so processes started from here do
    not take the socket for theirs. Exactly one listening TCP socket is expected.
    """
    pid, count = os.environ.pop("LISTEN_PID", None), os.environ.pop("LISTEN_FDS", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid is None or count is None:
        return None
    if not pid.isdigit() or int(pid) != os.getpid():
        return None  # meant for another process (the variables were inherited)
    if count != "1":
        raise ProvisionError(f"LISTEN_FDS={count[:40]!r}: the API takes exactly one socket from systemd "
                             "(one ListenStream= in provision-api.socket)")
    try:
        sock = socket.socket(fileno=LISTEN_FDS_START)
    except OSError as exc:
        raise ProvisionError(f"LISTEN_FDS=1 but fd {LISTEN_FDS_START} is not a socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        sock.detach()
        raise ProvisionError(f"the socket systemd passed (fd {LISTEN_FDS_START}) is not a TCP stream socket: "
                             "use ListenStream=ADDRESS:PORT in provision-api.socket")
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ProvisionError(f"the socket systemd passed (fd {LISTEN_FDS_START}) is not listening")
    os.set_inheritable(sock.fileno(), False)
    return sock


def transport_limits(config: ApiConfig) -> TransportLimits:
    """The transport's limits from the API's configuration."""
    return TransportLimits(
        header_timeout=config.header_timeout, body_timeout=config.body_timeout, body_min_rate=config.body_min_rate,
        idle_timeout=config.idle_timeout, max_connections=config.max_connections,
        max_connections_per_client=config.max_connections_per_client)


def token_check(api: Api) -> Callable[[str | None], bool]:
    """Whether a token text is valid now (signed, unexpired, current, not revoked), by the app's own
    verifier: the transport asks before letting an image upload past max_json_body."""
    verifier = token_verifier(api.context)

    def valid(text: str | None) -> bool:
        try:
            verifier.verify(text)
        except Unauthorized:
            return False
        return True
    return valid


def make_server(layout: Layout, sock: socket.socket, threads: int = 8) -> tuple[GuardedServer, Api]:
    """A waitress server for a fresh app on `sock`; returns (server, api)."""
    api = create_api(layout)
    config = api.context.config
    policy = BodyPolicy(config.max_json_body, config.max_image_body, token_check(api))
    server = GuardedServer(api.app, sock, threads, transport_limits(config), policy, ident="provisioner-api")
    return server, api


def _stop_on_signals(tasks: JobRunner) -> None:
    """SIGTERM and Ctrl-C end this process's server loop; its tasks stop claiming at once.

    Stopping the tasks first matters: Ctrl-C also reaches Terraform, and a build
    failing because of it is queued again rather than recorded as failed.
    """
    def interrupt(signum: int, frame: object) -> None:
        tasks.stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # started in the background: keep ignoring it
        signal.signal(signal.SIGINT, interrupt)


def serve(layout: Layout, port: int, workers: int = 1, threads: int = 8,
          listening: Callable[[int], None] | None = None) -> None:
    """Serve until interrupted; every process runs server tasks, the first also queued post-boot jobs.

    `listening` is called with the port once the socket is bound, before the app is built. Under
    systemd's socket activation the socket passed in LISTEN_FDS is served and `port` is not used.
    """
    restrict_umask()  # the root's files (state.db and its -wal, workspaces) are the engine's alone
    layout.protect_root()
    sock = inherited_socket() or bind(port)
    host, bound_port = sock.getsockname()[:2]
    if listening is not None:
        listening(bound_port)
    log.info("serving the OpenStack API on http://%s:%d (auth URL http://%s:%d/identity)",
             host, bound_port, host, bound_port)
    server, api = make_server(layout, sock, threads)
    # Before forking, once: tasks whose process died are queued again (an interrupted build resumes).
    api.tasks.recover()
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            child, child_api = make_server(layout, sock, threads)
            _stop_on_signals(child_api.tasks)
            child_api.tasks.start()
            try:
                child.run()
            except KeyboardInterrupt:
                pass
            finally:
                child_api.tasks.shutdown()
                os._exit(0)
        children.append(pid)
    api.tasks.start()
    worker = BackgroundWorker(layout)
    worker.start()
    _stop_on_signals(api.tasks)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
        worker.stop(timeout=10)
        api.tasks.shutdown()
