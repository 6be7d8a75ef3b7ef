"""Progress on a terminal and off it: the real CLI under a pseudo-terminal and with stdout a pipe.

The terminal is a real pty (os.openpty) with its window size set through
TIOCSWINSZ; nothing about it is mocked. The download cases use loopback HTTP
servers (tests/images/imagetest.py's, and one here for a body of unknown length).
"""

from __future__ import annotations

import fcntl
import http.server
import io
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

sys.path[:0] = [str(Path(__file__).parent / "images"), str(Path(__file__).parent / "api")]
from apitest import serve_root  # noqa: E402 (the in-process API server on 127.0.0.1)
from imagetest import Route, server  # noqa: E402,F401 (the loopback HTTP server fixture)

from provisioner.progress import Progress  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
SIZE = 20 * MIB  # five of transfer.py's 4 MiB chunks: several updates
ESCAPE = "\x1b"
FINAL = re.compile(r"import disk: 20\.0 MiB / 20\.0 MiB  100%  \S+ \S+/s  in 0:\d\d")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR") and not k.lower().endswith("_proxy")}
    env["TERM"] = "xterm"
    env.update(extra)
    return env


def _set_size(fd: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))


def on_pty(argv: list[str], columns: int = 100, **env: str) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr a fresh pty `columns` wide; its exit status and all it wrote."""
    master, slave = os.openpty()
    _set_size(slave, columns)
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=_env(**env),
                                start_new_session=True)
    finally:
        os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if not _readable(master, 1.0):
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the pty
                break
            if not data:
                break
            output += data
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    # The pty's line discipline turns \n into \r\n; undo it so only the program's own \r remain.
    return proc.returncode, output.decode().replace("\r\n", "\n")


def on_pipe(argv: list[str], **env: str) -> tuple[int, str]:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=_env(**env), timeout=300)
    return proc.returncode, proc.stdout.decode()


def provision(root: Path, *args: str) -> list[str]:
    return [str(REPO / "bin/provision"), "--root", str(root), *args]


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(b"\xeb\x63\x90" + os.urandom(SIZE - 3))
    return path


def segments(output: str) -> list[str]:
    """What was on screen between carriage returns and newlines."""
    return re.split(r"[\r\n]", output)


# -- image import on a terminal ---------------------------------------------------

def test_import_on_a_terminal_draws_a_bar_in_place_and_keeps_its_final_line(tmp_path: Path, disk: Path) -> None:
    status, output = on_pty(provision(tmp_path / "root", "image", "import", str(disk)), columns=100)
    assert status == 0, output
    assert ESCAPE not in output
    assert "\r" in output, "on a terminal the bar is redrawn in place"
    lines = output.split("\n")
    # The last redraw of the bar ends on the kept line, then the command's result.
    kept = lines[-3].rsplit("\r", 1)[-1]
    assert FINAL.match(kept), output
    assert kept.endswith("]") and "[" + "#" * 10 in kept, "the bar fills the room left"
    assert lines[-2].startswith("disk: imported version 1 (raw, 20.0 MiB") and lines[-1] == ""
    # Every drawn state fits the terminal (one column to spare, so it never wraps).
    assert max(len(s) for s in segments(output) if not s.startswith("disk: imported")) <= 99
    # Cleared before the kept line: a run of spaces as long as what it replaces.
    assert re.search(r"\r {20,}\r", output)


def test_a_narrow_terminal_gets_live_lines_cut_to_its_width(tmp_path: Path, disk: Path) -> None:
    status, output = on_pty(provision(tmp_path / "root", "image", "import", str(disk)), columns=40)
    assert status == 0, output
    *shown, kept = [s for s in segments(output) if s.startswith("import disk:")]
    assert shown and all(len(s) <= 39 for s in shown), shown
    # The kept line is whole (a newline follows it, so a wrap cannot spoil a redraw); no room for a bar.
    assert FINAL.fullmatch(kept), kept


def test_import_over_http_on_a_terminal_shows_the_percentage(tmp_path: Path, disk: Path, server) -> None:
    url = server.serve("/disk.img", Route(disk.read_bytes()))
    status, output = on_pty(provision(tmp_path / "root", "image", "import", url), columns=120)
    assert status == 0, output
    assert FINAL.match(output.split("\n")[-3].rsplit("\r", 1)[-1]), output


class _UnknownLength(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0 without Content-Length: the body ends when the connection closes."""

    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def unknown_length(disk: Path) -> Iterator[str]:
    handler = type("Handler", (_UnknownLength,), {"body": disk.read_bytes()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/disk.img"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_download_of_unknown_size_shows_bytes_and_rate_without_percent_or_eta(
        tmp_path: Path, unknown_length: str) -> None:
    status, output = on_pty(provision(tmp_path / "root", "image", "import", unknown_length), columns=120)
    assert status == 0, output
    shown = [s for s in segments(output) if s.startswith("import disk:")]
    assert shown, output
    assert not any("%" in s or "ETA" in s or "/ " in s or "[" in s for s in shown), shown
    assert re.fullmatch(r"import disk: 20\.0 MiB  \S+ \S+/s  in 0:\d\d", shown[-1]), shown


def test_sync_on_a_terminal_shows_a_bar_per_image(tmp_path: Path, disk: Path, server) -> None:
    url = server.serve("/debian-12.img", Route(disk.read_bytes()))
    listing = tmp_path / "images.list"
    listing.write_text(f"{disk}\n{url}\n")
    status, output = on_pty(provision(tmp_path / "root", "image", "sync", str(listing)), columns=120)
    assert status == 0, output
    kept = [line.rsplit("\r", 1)[-1] for line in output.split("\n")]
    assert [k.split(":")[0] for k in kept if k] == ["import disk", "ok      disk", "import debian-12",
                                                    "ok      debian-12"], output


# -- off a terminal: plain lines ------------------------------------------------------

def test_import_into_a_pipe_prints_plain_lines_every_ten_percent(tmp_path: Path, disk: Path) -> None:
    status, output = on_pipe(provision(tmp_path / "root", "image", "import", str(disk)))
    assert status == 0, output
    assert "\r" not in output and ESCAPE not in output
    *progress, result, end = output.split("\n")
    assert result.startswith("disk: imported version 1") and end == ""
    # 4 MiB chunks of 20 MiB: 20, 40, 60 and 80 % (the end is the result line's to say).
    assert [re.match(r"import disk: (\d+\.\d) MiB / 20\.0 MiB +(\d+)%", p).groups() for p in progress] == [
        ("4.0", "20"), ("8.0", "40"), ("12.0", "60"), ("16.0", "80")], output


@pytest.mark.parametrize("how", ["TERM=dumb", "-q"])
def test_a_dumb_terminal_gets_plain_lines_and_quiet_gets_none(tmp_path: Path, disk: Path, how: str) -> None:
    argv = provision(tmp_path / "root", "image", "import", str(disk))
    if how == "-q":
        status, output = on_pty([*argv, "-q"])
    else:
        status, output = on_pty(argv, TERM="dumb")
    assert status == 0, output
    assert "\r" not in output and ESCAPE not in output
    progress = [line for line in output.split("\n") if line.startswith("import disk:")]
    assert len(progress) == (4 if how == "TERM=dumb" else 0), output


# -- steps ----------------------------------------------------------------------------

@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A pty: the slave end as a text stream for Progress, the master's fd to read what it shows."""
    master, slave = os.openpty()
    _set_size(slave, 80)
    stream = open(slave, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 (closed below)
    try:
        yield stream, master
    finally:
        stream.close()
        os.close(master)


def _readable(fd: int, timeout: float) -> bool:
    """Whether `fd` has data within `timeout` seconds (poll: select() refuses descriptors past 1024)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def _read_all(master: int) -> str:
    output = bytearray()
    while _readable(master, 0.5):
        output += os.read(master, 65536)
    return output.decode().replace("\r\n", "\n")


def test_a_step_on_a_terminal_is_one_line_redrawn_and_says_print_above_it(
        terminal: tuple[io.TextIOWrapper, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream, master = terminal
    progress = Progress(stream)
    assert progress.tty
    with progress.step("example.test: terraform apply"):
        progress.say("   create: libvirt_domain.guest")
        with progress.transfer("import debian-12", None) as update:
            update(3 * MIB)
    output = _read_all(master)
    assert ESCAPE not in output
    lines = output.split("\n")
    # Drawn at once, not only after the first tick; cleared for the message; drawn again under it.
    drawn = r"(\r==> example\.test: terraform apply … \d+ s)+"  # once, and again at each tick
    assert lines[0].startswith("\r==> example.test: terraform apply … 0 s"), lines
    assert re.fullmatch(rf"{drawn}\r +\r   create: libvirt_domain\.guest", lines[0]), lines
    assert re.fullmatch(rf"{drawn}\rimport debian-12: [^\r]*(\rimport debian-12: [^\r]*)*\r +\r"
                        r"import debian-12: 3\.0 MiB  \S+ \S+/s  in 0:00", lines[1]), lines
    assert re.fullmatch(rf"{drawn}\r +\r==> example\.test: terraform apply done in \d+\.\ds", lines[2]), lines
    assert lines[3:] == [""]


def test_a_step_off_a_terminal_is_two_plain_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    with pytest.raises(RuntimeError), progress.step("example.test: terraform init"):
        with progress.transfer("import disk", 10 * MIB) as update:
            for done in range(MIB, 10 * MIB + 1, MIB):
                update(done)
        raise RuntimeError("stop")
    lines = stream.getvalue().split("\n")
    assert lines[0] == "==> example.test: terraform init"
    assert [line.split("%")[0].split()[-1] for line in lines[1:-2]] == [str(p) for p in range(10, 100, 10)]
    assert re.fullmatch(r"    FAILED in \d+\.\ds", lines[-2]) and lines[-1] == ""


def test_provision_domain_on_a_terminal_shows_its_steps_in_place(root: Path, domains: Path) -> None:
    argv = [str(REPO / "bin/provision"), "--root", str(root), "--domains", str(domains), "example.test"]
    status, output = on_pty(argv, columns=100)
    assert status == 0, output
    assert ESCAPE not in output
    kept = [line.rsplit("\r", 1)[-1] for line in output.split("\n")]
    for step in ("render", "terraform init", "terraform apply (create)"):
        assert f"\r==> example.test: {step} … " in output, output
        assert any(re.fullmatch(rf"==> example.test: {re.escape(step)} done in \d+\.\ds", k) for k in kept), kept


def test_the_api_upload_path_prints_no_progress_even_on_a_terminal(
        tmp_path: Path, disk: Path, terminal: tuple[io.TextIOWrapper, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard (the API never printed a bar): its uploads stream through the same store without a progress."""
    stream, master = terminal
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    with serve_root(tmp_path / "root") as live:
        headers = {"X-Auth-Token": live.token("alice")}
        created = requests.post(f"{live.url}/image/v2/images", headers=headers, timeout=30,
                                json={"name": "uploaded", "disk_format": "raw", "container_format": "bare"})
        assert created.status_code == 201, created.text
        upload = requests.put(f"{live.url}/image/v2/images/{created.json()['id']}/file", data=disk.read_bytes(),
                              headers={**headers, "Content-Type": "application/octet-stream"}, timeout=60)
        assert upload.status_code == 204, upload.text
        shown = requests.get(f"{live.url}/image/v2/images/{created.json()['id']}", headers=headers, timeout=30)
        assert shown.json()["size"] == SIZE
    output = _read_all(master)
    assert "\r" not in output and "MiB" not in output, output


def test_a_reader_leaving_the_pipe_does_not_stop_the_apply(tmp_path: Path) -> None:
    # `provision web.test | head -1`: the progress lines after the first go nowhere, the apply goes on, and the
    # command ends as a shell reports one whose reader left (141), without a traceback.
    from conftest import EXAMPLE

    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLE, domains / "example.test")
    argv = [str(REPO / "bin/provision"), "--root", str(tmp_path / "root"), "--domains", str(domains), "example.test"]
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write is EPIPE
    done = subprocess.run(argv, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(writer)
    assert done.returncode == 141 and "Traceback" not in done.stderr, done.stderr
    again = subprocess.run([*argv[:-1], "-q", "example.test"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "example.test: unchanged" in again.stdout, again.stderr
