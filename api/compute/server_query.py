"""GET /servers query parameters: Nova's filters (name, status, image, flavor, changes-since, tags, ip, ip6), its
order (newest first) and limit/marker pagination with a `servers_links` next link."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

import falcon

from api.compute.microversion import version_of
from api.compute.models import Server
from api.compute.name_filter import NameFilter
from api.errors import BadRequest
from api.microversion import Version
from provisioner.excerpt import cut

TAGS = Version(2, 26)
MAX_LIMIT = 1000  # Nova's osapi_max_limit default: a larger limit is cut to it


@dataclass(frozen=True)
class Page:
    """The servers of one page, and the query of the next page (None on the last one)."""

    servers: list[Server]
    next_query: str | None


def _since(text: str) -> float:
    """An ISO 8601 time (changes-since) as epoch seconds; naive times are UTC, as Nova reads them."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("changes-since", f"{cut(text)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _limit(req: falcon.Request) -> int | None:
    text = req.get_param("limit")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise BadRequest("limit", f"{cut(text)} is not a non-negative integer")
    return min(int(text), MAX_LIMIT)


def _by_tags(req: falcon.Request, servers: list[Server]) -> list[Server]:
    """Nova's tag filters (2.26): tags (has all), tags-any, not-tags (lacks one at least), not-tags-any."""
    if version_of(req) < TAGS:
        return servers
    tests = {"tags": lambda wanted, have: wanted <= have, "tags-any": lambda wanted, have: bool(wanted & have),
             "not-tags": lambda wanted, have: not wanted <= have,
             "not-tags-any": lambda wanted, have: not wanted & have}
    for name, test in tests.items():
        text = req.get_param(name)
        if text:
            wanted = set(text.split(","))
            servers = [s for s in servers if test(wanted, set(s.tags))]
    return servers


def _addresses(server: Server, version: int) -> list[str]:
    """The server's fixed IP addresses of one IP version (its NICs')."""
    found = [a for port in server.ports for a in port.get("ips", []) if isinstance(a, str)]
    return [a for a in found if _version(a) == version]


def _version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def _by_ip(req: falcon.Request, servers: list[Server]) -> list[Server]:
    """Nova's `ip` / `ip6` filters: a regular expression matched at the start of a fixed IPv4 / IPv6 address
    (re.match in Nova; run here by NameFilter, linear in the address); a server matching either is kept."""
    wanted = [(NameFilter(text if text.startswith("^") else f"^{text}"), version)
              for text, version in ((req.get_param("ip"), 4), (req.get_param("ip6"), 6)) if text]
    if not wanted:
        return servers
    return [s for s in servers if any(p.search(a) for p, version in wanted for a in _addresses(s, version))]


def select(req: falcon.Request, servers: list[Server]) -> Page:
    """The page of `servers` the request's filters, marker and limit ask for, newest first."""
    name, status = req.get_param("name"), req.get_param("status")
    image, flavor, since = req.get_param("image"), req.get_param("flavor"), req.get_param("changes-since")
    if name:
        pattern = NameFilter(name)
        servers = [s for s in servers if pattern.search(s.name)]
    if status:
        servers = [s for s in servers if s.status == status.upper()]
    if image:
        servers = [s for s in servers if s.image_id == image]
    if flavor:
        servers = [s for s in servers if s.flavor_id == flavor]
    if since:
        after = _since(since)
        servers = [s for s in servers if s.updated >= after]
    servers = _by_tags(req, servers)
    servers = _by_ip(req, servers)
    servers = sorted(servers, key=lambda s: (s.created, s.id), reverse=True)
    marker = req.get_param("marker")
    if marker is not None:
        index = next((i for i, s in enumerate(servers) if s.id == marker), None)
        if index is None:
            raise BadRequest("marker", f"marker [{cut(marker)}] not found")
        servers = servers[index + 1:]
    limit = _limit(req)
    if limit is None or len(servers) <= limit:
        return Page(servers, None)
    page = servers[:limit]
    # The next link keeps the filters and moves the marker, as Nova's.
    kept = [(k, v) for k, v in req.params.items() if k != "marker" and isinstance(v, str)]
    return Page(page, urlencode([*kept, ("marker", page[-1].id)]) if page else None)
