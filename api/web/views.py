"""Read-only views over the API's stores and the engine's records, cut to what a page shows and to whom.

Visibility: an admin (the `admin` role on any project in config.yaml) sees every
project's servers and volumes and the domains provisioned from the CLI; a
member sees its own projects' servers and volumes, and the domains carrying
them; images and networks as Glance and Neutron show them to the member.
Everything from a guest (console, job log) is cut to a bounded tail here and
HTML-escaped by the templates.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from api.compute.console import ConsoleLog
from api.compute.models import ComputeStore, Server
from api.config import Project, User
from api.identity.tokens import Token
from api.image.catalog import ImageCatalog
from api.network.store import NetworkStore
from api.volume.models import Volume
from api.volume.store import VolumeStore
from provisioner.errors import InputError, ProvisionError
from provisioner.layout import Layout
from provisioner.postboot.queue import JobQueue
from provisioner.spec.names import validate_domain_name
from provisioner.status import DomainStatus, domain_status

TAIL_LINES = 60  # lines of a console or job log a page shows
TAIL_CHARS = 16384  # and at most this many characters of them
LOG_READ_BYTES = 64 * 1024  # read at most this much from the end of a job log
MAX_ROWS = 500  # rows per table on the list page
# Terminal control sequences and other control characters a guest may print (kept: tab and newline).
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Viewer:
    """The logged-in user, the projects it has a role on, and whether it is an admin."""

    user: User
    projects: tuple[Project, ...]

    @property
    def is_admin(self) -> bool:
        return any("admin" in roles for roles in self.user.roles.values())

    @property
    def project_ids(self) -> set[str]:
        return {p.id for p in self.projects}

    def tokens(self) -> list[Token]:
        """Stand-in tokens (never issued) through which the stores apply their own visibility rules."""
        if self.is_admin:
            first = self.projects[0] if self.projects else Project("", "")
            return [Token(self.user.id, self.user.name, first.id, first.name, ("admin",), 0.0, float("inf"))]
        return [Token(self.user.id, self.user.name, p.id, p.name, tuple(self.user.roles.get(p.name, ())),
                      0.0, float("inf")) for p in self.projects]


@dataclass(frozen=True)
class LastApply:
    """The last apply of a domain: its outcome, when it ended, how long it took."""

    state: str
    finished: str
    duration: str
    error: str | None


@dataclass(frozen=True)
class DomainRow:
    """One engine domain as the list and its page show it."""

    name: str
    state: str
    addresses: tuple[str, ...]
    libvirt_uri: str
    last_apply: LastApply | None
    server_id: str | None  # the Nova server it carries (None: provisioned from the CLI)


@dataclass(frozen=True)
class ServerRow:
    """One Nova server."""

    id: str
    name: str
    project: str
    status: str
    task_state: str | None
    addresses: tuple[str, ...]
    domain: str
    flavor: str
    image: str
    fault: str | None
    created: str


@dataclass(frozen=True)
class ImageView:
    name: str
    version: str
    status: str
    size: str
    visibility: str


@dataclass(frozen=True)
class NetworkView:
    name: str
    project: str
    shared: bool
    status: str


@dataclass(frozen=True)
class VolumeView:
    name: str
    project: str
    size: int
    status: str
    attached_to: str | None


@dataclass(frozen=True)
class JobView:
    """A domain's latest post-boot job and the tail of its log."""

    id: int
    kind: str
    state: str
    step: str | None
    message: str | None
    log_tail: str


@dataclass(frozen=True)
class Overview:
    """What the list page shows."""

    servers: list[ServerRow]
    domains: list[DomainRow]  # those provisioned from the CLI (admins only)
    domains_error: str | None  # why they could not be read, if so
    images: list[ImageView]
    networks: list[NetworkView]
    volumes: list[VolumeView]


@dataclass(frozen=True)
class GuestPage:
    """One guest's page: the server (if it is one), its domain, job and console tail."""

    title: str
    server: ServerRow | None
    domain: DomainRow | None
    job: JobView | None
    console: str
    volumes: list[VolumeView]


def tail(text: str) -> str:
    """The last TAIL_LINES lines (at most TAIL_CHARS characters) without control characters."""
    lines = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "-"


def _size(size: int | None) -> str:
    if not size:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "-"


def _last_apply(record: dict | None) -> LastApply | None:
    if not isinstance(record, dict):
        return None
    started, finished = record.get("started"), record.get("finished")
    duration = f"{finished - started:.1f} s" if isinstance(started, (int, float)) and isinstance(
        finished, (int, float)) else "-"
    error = record.get("error")
    return LastApply(str(record.get("state", "-")), _when(finished if isinstance(finished, (int, float)) else None),
                     duration, tail(error) if isinstance(error, str) else None)


class StatusViews:
    """Builds the pages' data for one viewer from the stores of one app."""

    def __init__(self, layout: Layout, compute: ComputeStore, images: ImageCatalog, networks: NetworkStore,
                 volumes: VolumeStore, flavors: dict[str, str]):
        self.layout = layout
        self.flavors = flavors  # id -> name, for the server page
        self.compute = compute
        self.images = images
        self.networks = networks
        self.volumes = volumes
        self.console = ConsoleLog(layout)
        self.jobs = JobQueue(layout.state_db)

    def _servers(self, viewer: Viewer) -> list[Server]:
        return self.compute.listed(None if viewer.is_admin else viewer.project_ids)

    def _server_row(self, server: Server, names: dict[str, str], networks: dict[str, str]) -> ServerRow:
        addresses = tuple(f"{networks.get(nic.network_id, nic.network_id)}: {ip}"
                          for nic in server.nics() for ip in nic.ips)
        return ServerRow(server.id, server.name, names.get(server.project_id, server.project_id), server.status,
                         server.task_state, addresses, server.domain, server.flavor_id, server.image_id,
                         tail(server.fault) if server.fault else None, _when(server.created))

    def _network_names(self, viewer: Viewer) -> dict[str, str]:
        return {n.id: n.name for token in viewer.tokens() for n in self.networks.visible_networks(token)}

    def _domain_row(self, status: DomainStatus, server_id: str | None) -> DomainRow:
        return DomainRow(status.name, status.state, tuple(status.addresses), status.libvirt_uri,
                         _last_apply(status.last_apply), server_id)

    def overview(self, viewer: Viewer, names: dict[str, str]) -> Overview:
        """The list page's tables for `viewer`; `names` maps project ids to names."""
        networks = self._network_names(viewer)
        servers = self._servers(viewer)[:MAX_ROWS]
        domains: list[DomainRow] = []
        domains_error = None
        if viewer.is_admin:
            carried = {s.domain for s in self.compute.listed(None)}
            try:
                domains = [self._domain_row(d, None) for d in domain_status(self.layout)
                           if d.name not in carried][:MAX_ROWS]
            except (ProvisionError, InputError, OSError, ValueError) as exc:  # one unreadable spec.json
                domains_error = tail(str(exc))[:400]
        images: dict[str, ImageView] = {}
        for token in viewer.tokens():
            for image in self.images.visible(token):
                record = image.record
                # Glance allows an image without a name: shown (and sorted) by its id.
                name = (image.row.name if image.row else (record.name if record else None)) or image.id
                images[image.id] = ImageView(name, f"v{record.version}" if record else "-", image.status,
                                             _size(record.size if record else None), image.visibility)
        found: dict[str, NetworkView] = {}
        for token in viewer.tokens():
            for net in self.networks.visible_networks(token):
                found[net.id] = NetworkView(net.name, names.get(net.project_id, net.project_id or "(shared)"),
                                            net.shared, net.status)
        volumes = self.volumes.volumes.list(None if viewer.is_admin else viewer.project_ids)[:MAX_ROWS]
        return Overview([self._server_row(s, names, networks) for s in servers], domains, domains_error,
                        sorted(images.values(), key=lambda i: (i.name, i.version))[:MAX_ROWS],
                        list(found.values())[:MAX_ROWS],
                        [self._volume(v, names) for v in volumes])

    @staticmethod
    def _volume(volume: Volume, names: dict[str, str]) -> VolumeView:
        return VolumeView(volume.name, names.get(volume.project_id, volume.project_id), volume.size,
                          volume.status, volume.server_id)

    def server_page(self, viewer: Viewer, server_id: str, names: dict[str, str]) -> GuestPage | None:
        """A server's page, or None if there is none the viewer may see (another project's is None too)."""
        server = self.compute.servers.get(server_id[:64])
        if server is None or (not viewer.is_admin and server.project_id not in viewer.project_ids):
            return None
        row = self._server_row(server, names, self._network_names(viewer))
        image = next((i for i in self.images.all() if i.id == server.image_id), None)
        image_name = ((image.row.name if image.row else image.record.name) if image else None) or server.image_id
        row = replace(row, flavor=self.flavors.get(server.flavor_id, server.flavor_id), image=image_name)
        volumes = [self._volume(v, names) for v in self.volumes.attached_to(server.id)]
        return GuestPage(f"server {server.name}", row, self._domain(server.domain, server.id),
                         self._job(server.domain), tail(self.console.tail(server.domain, TAIL_LINES)), volumes)

    def domain_page(self, viewer: Viewer, name: str, names: dict[str, str]) -> GuestPage | None:
        """A domain's page (a server's domain shows its server's page), or None if the viewer may not see it."""
        try:
            validate_domain_name(name)
        except (InputError, ProvisionError):
            return None
        server = next((s for s in self.compute.listed(None) if s.domain == name), None)
        if server is not None:
            return self.server_page(viewer, server.id, names)
        if not viewer.is_admin:
            return None
        domain = self._domain(name, None)
        if domain is None:
            return None
        return GuestPage(f"domain {name}", None, domain, self._job(name),
                         tail(self.console.tail(name, TAIL_LINES)), [])

    def _domain(self, name: str, server_id: str | None) -> DomainRow | None:
        try:
            found = domain_status(self.layout, name)
        except (ProvisionError, InputError, OSError, ValueError):
            return None
        return self._domain_row(found[0], server_id) if found else None

    def _job(self, domain: str) -> JobView | None:
        jobs = self.jobs.list(domain=domain)
        if not jobs:
            return None
        job = max(jobs, key=lambda j: j.id)
        return JobView(job.id, job.kind, job.state, job.step, tail(job.message) if job.message else None,
                       tail(_read_tail(Path(job.log_path))) if job.log_path else "")


def _read_tail(path: Path) -> str:
    """The last LOG_READ_BYTES of a log file as text ('' if it is gone)."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(0, size - LOG_READ_BYTES))
            return stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
