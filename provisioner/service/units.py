"""The systemd units of templates/systemd/, rendered for one root: pure text, nothing written."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from provisioner.errors import ProvisionError
from provisioner.template_sources import TEMPLATES

SYSTEMD_TEMPLATES = TEMPLATES / "systemd"
REPO = TEMPLATES.parent
SOCKET = "provision-api.socket"
API = "provision-api.service"
WORKER = "provision-worker.service"
SYNC = "provision-image-sync.service"
TIMER = "provision-image-sync.timer"
UNIT_NAMES = (SOCKET, API, WORKER, SYNC, TIMER)
# What `install-service` enables and starts: the API starts on its first connection, the sync from its timer.
STARTED = (SOCKET, WORKER, TIMER)
DEFAULT_PORT = 5000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_SCHEDULE = "daily"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ServiceSettings:
    """What the units are rendered from (bin/provision install-service's options)."""

    root: Path
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    workers: int = 2
    image_list: Path | None = None  # default: ROOT/images.list
    sync_schedule: str = DEFAULT_SCHEDULE
    provision: Path = REPO / "bin" / "provision"

    @property
    def listen(self) -> str:
        """The socket's ListenStream= value."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def images(self) -> Path:
        """The image list `image sync` reads."""
        return self.image_list or self.root / "images.list"


def check_settings(settings: ServiceSettings) -> None:
    """ProvisionError naming the option whose value cannot go into a unit file."""
    if not 1 <= settings.port <= 65535:
        raise ProvisionError(f"--port {settings.port}: use a TCP port from 1 to 65535")
    try:
        address = ipaddress.ip_address(settings.host)
    except ValueError:
        raise ProvisionError(f"--host {settings.host[:40]!r}: use an IP address (the API listens on loopback)") from None
    if not address.is_loopback:
        raise ProvisionError(f"--host {settings.host[:40]!r}: the API listens on loopback only (127.0.0.0/8 or ::1)")
    if settings.workers < 1:
        raise ProvisionError(f"--workers {settings.workers}: at least 1")
    for option, path in (("--root", settings.root), ("--image-list", settings.images),
                         ("the provision command", settings.provision)):
        if not path.is_absolute():
            raise ProvisionError(f"{option} {str(path)[:40]!r}: use an absolute path")
        if _CONTROL.search(str(path)):
            raise ProvisionError(f"{option}: a path with control characters cannot go into a unit file")
    if _CONTROL.search(settings.sync_schedule) or not settings.sync_schedule.strip():
        raise ProvisionError("--sync-schedule: give an OnCalendar= expression, e.g. daily or '*-*-* 03:00'")


def sdescape(value: object) -> str:
    """A value for a unit setting that takes a path: systemd's specifiers (%) doubled."""
    return str(value).replace("%", "%%")


def sdquote(value: object) -> str:
    """One word of an Exec*= command line: double-quoted, with \\, ", % and $ escaped as systemd reads them."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{text}"'


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SYSTEMD_TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["sdquote"] = sdquote
    env.filters["sdescape"] = sdescape
    return env


def render_units(settings: ServiceSettings) -> dict[str, str]:
    """Each unit's name and text, for `settings` (checked first)."""
    check_settings(settings)
    env = _environment()
    values = {"root": settings.root, "listen": settings.listen, "workers": settings.workers,
              "image_list": settings.images, "sync_schedule": settings.sync_schedule,
              "provision": settings.provision, "docs": REPO / "docs" / "service.md"}
    return {name: env.get_template(f"{name}.j2").render(values) for name in UNIT_NAMES}
