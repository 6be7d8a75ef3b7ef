"""ssh's ProxyCommand for ProxyUseFdpass: connect to HOST PORT here and hand the socket to ssh.

Run inside a network namespace (`ip netns exec NS python3 fdpass_connect.py 127.0.0.1 22`), the
connection is made in that namespace; ssh then talks over the socket itself, so no process
copies bytes in between and nothing is left running once the socket is handed over.
Standard library only: it runs on every ssh connection tests/sshvirt.py makes.
"""

from __future__ import annotations

import socket
import sys


def main(argv: list[str]) -> int:
    """Connect to argv's host and port; send the socket over stdout (ssh's socketpair)."""
    if len(argv) != 2:
        print("usage: fdpass_connect.py HOST PORT", file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    try:
        conn = socket.create_connection((host, port), timeout=10)
    except OSError as exc:  # ssh shows our stderr: one line, not a traceback
        print(f"fdpass_connect: {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with conn, socket.socket(fileno=1) as out:
        conn.settimeout(None)
        # ssh reads exactly one byte carrying the descriptor (SCM_RIGHTS).
        socket.send_fds(out, [b"\0"], [conn.fileno()])
        out.detach()  # stdout is ssh's: not ours to close twice
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
