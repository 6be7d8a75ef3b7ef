"""Rendering the units (pure text) and the socket systemd passes to `provision serve` (systemd-socket-activate,
systemd's own tool for the sd_listen_fds protocol, without a service manager)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from provisioner.errors import ProvisionError
from provisioner.service.units import API, SOCKET, SYNC, TIMER, ServiceSettings, render_units, sdquote

REPO = Path(__file__).resolve().parents[2]


def test_paths_are_quoted_as_systemd_reads_them() -> None:
    units = render_units(ServiceSettings(root=Path('/srv/a b/"q"/%h/$HOME\\x'), port=5123))
    assert 'serve --root "/srv/a b/\\"q\\"/%%h/$$HOME\\\\x" --workers 2' in units[API]
    assert "ListenStream=127.0.0.1:5123\n" in units[SOCKET]
    assert "ConditionPathExists=/srv/a b/\"q\"/%%h/$HOME\\x/images.list\n" in units[SYNC]
    assert "OnCalendar=daily\n" in units[TIMER]
    assert sdquote("plain") == '"plain"'


def test_ipv6_loopback_is_bracketed() -> None:
    assert "ListenStream=[::1]:8000\n" in render_units(ServiceSettings(root=Path("/srv/r"), host="::1", port=8000))[SOCKET]


@pytest.mark.parametrize("settings, message", [
    (ServiceSettings(root=Path("/srv/r"), port=0), "--port 0: use a TCP port from 1 to 65535"),
    (ServiceSettings(root=Path("/srv/r"), port=70000), "--port 70000"),
    (ServiceSettings(root=Path("/srv/r"), host="0.0.0.0"), "the API listens on loopback only"),
    (ServiceSettings(root=Path("/srv/r"), host="localhost"), "--host 'localhost': use an IP address"),
    (ServiceSettings(root=Path("/srv/r"), workers=0), "--workers 0: at least 1"),
    (ServiceSettings(root=Path("/srv/r\nExecStartPre=/bin/evil")), "--root: a path with control characters"),
    (ServiceSettings(root=Path("/srv/r"), image_list=Path("/srv/l\n[Service]")), "--image-list: a path with control"),
    (ServiceSettings(root=Path("/srv/r"), sync_schedule="daily\nExecStart=/bin/evil"), "--sync-schedule"),
    (ServiceSettings(root=Path("relative")), "--root 'relative': use an absolute path"),
])
def test_values_that_cannot_go_into_a_unit_are_refused(settings: ServiceSettings, message: str) -> None:
    with pytest.raises(ProvisionError) as caught:
        render_units(settings)
    assert message in str(caught.value)
    assert "evil" not in str(caught.value)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate not installed")
def test_two_sockets_from_systemd_are_refused_by_name(tmp_path: Path) -> None:
    first, second = _free_port(), _free_port()
    process = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{first}", "-l", f"127.0.0.1:{second}",
                                str(REPO / "bin" / "provision"), "serve", "--root", str(tmp_path / "root")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for _ in range(2):  # systemd-socket-activate says when each socket listens
            assert process.stderr.readline().startswith("Listening on 127.0.0.1:")
        # The service starts on the first connection; the connection is then closed unanswered.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{first}/identity/v3", timeout=120)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert "LISTEN_FDS='2': the API takes exactly one socket from systemd" in err, err
