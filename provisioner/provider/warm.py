"""The warm provider: one long-lived provider process many Terraform runs attach to.

Terraform starts a plugin 3-4 times per apply, each a fresh Python; with
TF_REATTACH_PROVIDERS it connects to an already-running ("unmanaged")
provider instead (provisioner/terraform/reattach.py starts this process and
passes the variable). Layout, all in the run directory (0700, its owner's):

  provider.sock   where Terraform connects (0600). Each connection is accepted
                  here, its peer's uid checked (SO_PEERCRED: this uid only),
                  then relayed to the gRPC server over its own socket
  grpc.sock       the gRPC server (plain gRPC: reattached clients do no TLS)
  conn/N          the relay's end of connection N, bound to a path so gRPC
                  names the connection (context.peer()): each connection
                  (one Terraform provider instance) has its own configuration
  provider.json   {"pid", "socket"}: written once serving
  provider.log    this process's stderr

The process never exits on Terraform's request (an unmanaged provider is not
Terraform's to stop). It exits after `idle` seconds without a connection, when
the run directory goes away (the root was removed) or when its socket was
replaced by another provider.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ProviderError

if TYPE_CHECKING:
    from .servicer import ProviderState

# The engine imports this module for its constants (reattach.py): gRPC and the
# servicer are imported by serve() only.

SOCKET = "provider.sock"
# Named by the serving process: a provider that was replaced (its run directory removed and made again,
# or another one took over) removes only its own when it exits (gRPC unlinks its socket's path on stop).
GRPC_SOCKET = "grpc-{pid}.sock"
CONN_DIR = "conn-{pid}"
INFO = "provider.json"
LOG = "provider.log"
READY_LINE = "ready"
# Instead of the ready line when setting up failed: "failed ERRNO", so the engine can tell a full disk.
FAILED_PREFIX = "failed"
POLL_SECONDS = 0.5
RELAY_CHUNK = 256 * 1024


class Connections:
    """The relayed connections: their gRPC peer names and provider states."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, "ProviderState"] = {}
        self._next = 0
        self.last_closed = time.monotonic()

    def open(self, conn_dir: Path) -> tuple[Path, str]:
        """Register a new connection: (path to bind its relay socket to, its gRPC peer name)."""
        from .servicer import ProviderState

        with self._lock:
            self._next += 1
            path = conn_dir / str(self._next)
            peer = f"unix:{path}"
            self._states[peer] = ProviderState()
            return path, peer

    def close(self, peer: str) -> None:
        """Forget a connection (and close its hypervisor connection)."""
        with self._lock:
            state = self._states.pop(peer, None)
            self.last_closed = time.monotonic()
        if state is not None:
            state.close()

    def count(self) -> int:
        with self._lock:
            return len(self._states)

    def state_for(self, context: Any) -> "ProviderState":
        """The state of the connection an RPC came on; only relayed connections are served."""
        with self._lock:
            state = self._states.get(context.peer())
        if state is None:
            raise ProviderError("Connection not admitted",
                                "The warm libvirt provider serves connections made through its provider.sock only.")
        return state


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process on the other end of a unix socket (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction until EOF, then pass the EOF on."""
    try:
        while data := src.recv(RELAY_CHUNK):
            dst.sendall(data)
    except OSError:
        pass  # the other side went away: the pair is torn down below
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def own_path(run_dir: Path, name: str, pid: int | None = None) -> Path:
    """GRPC_SOCKET or CONN_DIR of process `pid` (default: this one) in `run_dir`."""
    return run_dir / name.format(pid=os.getpid() if pid is None else pid)


def _relay(client: socket.socket, run_dir: Path, connections: Connections) -> None:
    """Relay one admitted connection to the gRPC server until both sides are done."""
    path, peer = connections.open(own_path(run_dir, CONN_DIR))
    inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        inner.bind(str(path))
        inner.connect(str(own_path(run_dir, GRPC_SOCKET)))
        back = threading.Thread(target=_pump, args=(inner, client), daemon=True)
        back.start()
        _pump(client, inner)
        back.join()
    except OSError as exc:
        print(f"warm provider: connection {path.name}: {exc}", file=sys.stderr)
    finally:
        connections.close(peer)  # before the path can be reused
        inner.close()
        client.close()
        try:
            path.unlink()
        except OSError:
            pass


def _accept(listener: socket.socket, run_dir: Path, connections: Connections, stopping: threading.Event) -> None:
    uid = os.getuid()
    while not stopping.is_set():
        try:
            client, _ = listener.accept()
        except OSError:
            if stopping.is_set():
                return
            continue
        other = peer_uid(client)
        if other != uid:
            # The socket is 0600 in a 0700 directory; this only happens for root or a bug in the modes.
            print(f"warm provider: refused a connection from uid {other}", file=sys.stderr)
            client.close()
            continue
        threading.Thread(target=_relay, args=(client, run_dir, connections), daemon=True).start()


def _same_file(path: Path, ident: tuple[int, int]) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == ident


def serve(run_dir: Path, idle: float) -> None:
    """Serve Terraform runs from `run_dir` until idle, orphaned or replaced."""
    from .plugin import grpc_environment, grpc_server

    grpc_environment()  # the servicer imports grpc
    from .servicer import ProviderServicer

    run_dir = run_dir.absolute()
    (run_dir / SOCKET).unlink(missing_ok=True)
    _remove_dead_providers_files(run_dir)
    grpc_socket, conn_dir = own_path(run_dir, GRPC_SOCKET), own_path(run_dir, CONN_DIR)
    conn_dir.mkdir(mode=0o700, exist_ok=True)

    connections = Connections()
    servicer = ProviderServicer(state_for=connections.state_for)
    # An unmanaged provider belongs to no Terraform run: GRPCController.Shutdown is ignored.
    server = grpc_server(servicer, lambda: None, workers=32)
    server.add_insecure_port(f"unix://{grpc_socket}")
    server.start()
    os.chmod(grpc_socket, 0o600)  # like every file under the root (gRPC makes it 0777 & ~umask)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(run_dir / SOCKET))
    os.chmod(run_dir / SOCKET, 0o600)
    listener.listen(64)
    info = os.stat(run_dir / SOCKET)
    ident = (info.st_dev, info.st_ino)
    tmp = run_dir / f".{INFO}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps({"pid": os.getpid(), "socket": str(run_dir / SOCKET)}))
        os.replace(tmp, run_dir / INFO)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk: nothing half-written left behind
        (run_dir / SOCKET).unlink(missing_ok=True)
        raise

    stopping = threading.Event()
    threading.Thread(target=_accept, args=(listener, run_dir, connections, stopping), daemon=True).start()
    print(READY_LINE, flush=True)
    _detach_stdout()

    reason = "idle"
    while True:
        time.sleep(POLL_SECONDS)
        if not _same_file(run_dir / SOCKET, ident):
            reason = "socket removed or replaced"
            break
        if connections.count() == 0 and time.monotonic() - connections.last_closed > idle:
            break
    # Unlinked first, so a run looking for us from now on starts another provider.
    if _same_file(run_dir / SOCKET, ident):
        (run_dir / SOCKET).unlink(missing_ok=True)
        (run_dir / INFO).unlink(missing_ok=True)
    stopping.set()
    listener.close()
    servicer.inflight.wait_idle(30.0)
    server.stop(0.2).wait(1.0)
    shutil.rmtree(conn_dir, ignore_errors=True)
    print(f"warm provider {os.getpid()}: exiting ({reason})", file=sys.stderr, flush=True)
    os._exit(0)


def _remove_dead_providers_files(run_dir: Path) -> None:
    """The gRPC sockets and connection directories left by providers that are no longer running."""
    for entry in run_dir.iterdir():
        stem, _, pid = entry.name.removesuffix(".sock").rpartition("-")
        if stem not in ("grpc", "conn") or not pid.isdigit() or _running(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to clean up after
    return True


def _detach_stdout() -> None:
    """Point stdout at /dev/null: whoever started us stops reading after the ready line."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    """`python -m provisioner.provider.warm RUN_DIR [--idle SECONDS]` (started by the engine)."""
    parser = argparse.ArgumentParser(prog="provisioner.provider.warm", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--idle", type=float, default=300.0, help="exit after this many seconds unused")
    args = parser.parse_args(argv)
    try:
        serve(args.run_dir, args.idle)
    except OSError as exc:  # before the ready line: tell the engine why, then leave
        print(f"{FAILED_PREFIX} {exc.errno or 0}", flush=True)
        print(f"warm provider: cannot serve from {args.run_dir}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    from provisioner.layout import restrict_umask

    restrict_umask()
    main()
