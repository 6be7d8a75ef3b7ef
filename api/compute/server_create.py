"""The parts of POST /servers and PUT /servers/{id} that are Nova's API rather than the guest's build:
how many servers (min_count/max_count), their names, description (2.19), security groups, reservation id.

The guest itself (flavor, image, networks, keys, user data) is ServerBuilder's.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from dataclasses import dataclass, field as dc_field
from typing import Any

from api.errors import BadRequest
from api.http import field
from api.microversion import Version
from api.network.models import SecurityGroup
from provisioner.excerpt import cut, describe

MAX_COUNT = 100  # servers one request may ask for (Nova's bound is the quota; this one holds with -1 quotas)
MAX_DESCRIPTION = 255
MAX_PASSWORD = 255
RESERVATION_CHARS = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class CreateRequest:
    """What a create request asks of Nova beyond one guest's build."""

    min_count: int = 1
    max_count: int = 1
    description: str | None = None
    security_groups: tuple[str, ...] = ("default",)
    return_reservation_id: bool = False
    access_ipv4: str = ""
    access_ipv6: str = ""
    disk_config: str = "MANUAL"
    reservation_id: str = dc_field(default_factory=lambda: "r-" + "".join(
        secrets.choice(RESERVATION_CHARS) for _ in range(8)))

    def name_of(self, name: str, index: int) -> str:
        """The index-th server's name: Nova's `%(name)s-%(count)d` when a request makes several."""
        return f"{name}-{index + 1}" if self.max_count > 1 else name


def _count(body: dict[str, Any], key: str, default: int) -> int:
    """A positive integer, given as a number or as decimal text (Nova accepts both)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"server.{key}", f"{describe(value)} is not a positive integer")
    return value


def _description(body: dict[str, Any], version: Version, where: str) -> str | None:
    if "description" not in body:
        return None
    if version < Version(2, 19):
        raise BadRequest(f"{where}.description", "is only accepted from microversion 2.19 on")
    value = field(body, "description", str, where, False)
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise BadRequest(f"{where}.description", f"is longer than {MAX_DESCRIPTION} characters")
    return value


def _access_ip(body: dict[str, Any], key: str, version: int, where: str) -> str:
    """accessIPv4/accessIPv6: an address of that IP version, or empty."""
    value = field(body, key, str, where, False, "")
    if not value:
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise BadRequest(f"{where}.{key}", f"{cut(value)} is not an IPv{version} address")
    return str(address)  # normalised, as Nova stores it ('::babe:220.12.22.2' is '::babe:dc0c:1602')


def _disk_config(body: dict[str, Any]) -> str:
    """OS-DCF:diskConfig, AUTO or MANUAL: recorded and shown as Nova does (the disk is the flavor's size either
    way: the image's partition is grown by cloud-init)."""
    value = field(body, "OS-DCF:diskConfig", str, "server", False, "MANUAL")
    if value not in ("AUTO", "MANUAL"):
        raise BadRequest("server.OS-DCF:diskConfig", f"{cut(value)}: use AUTO or MANUAL")
    return value


def admin_password(body: dict[str, Any]) -> str | None:
    """adminPass: the admin user's password on the new guest (a SHA-512 crypt hash in its spec), at most
    MAX_PASSWORD characters; None or empty for none."""
    value = field(body, "adminPass", str, "server", False)
    if value is not None and len(value) > MAX_PASSWORD:
        raise BadRequest("server.adminPass", f"is longer than {MAX_PASSWORD} characters")
    return value or None


def _security_groups(body: dict[str, Any], groups: list[SecurityGroup]) -> tuple[str, ...]:
    """The names of the requested groups (by name or id, as Nova resolves them in Neutron), `default` if none."""
    requested = field(body, "security_groups", list, "server", False, [])
    names: list[str] = []
    for index, entry in enumerate(requested):
        where = f"server.security_groups[{index}].name"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BadRequest(where, "is required and must be a string")
        wanted = entry["name"]
        found = next((g for g in groups if wanted in (g.name, g.id)), None)
        if found is None:
            raise BadRequest(where, f"security group {cut(wanted)} not found for project")
        if found.name not in names:
            names.append(found.name)
    return tuple(names) or ("default",)


def create_request(body: dict[str, Any], version: Version, groups: list[SecurityGroup]) -> CreateRequest:
    """Validate the Nova-level fields of a create body against the caller's security groups."""
    min_count = _count(body, "min_count", 1)
    max_count = _count(body, "max_count", min_count)
    if min_count > max_count:
        raise BadRequest("server.min_count", "must be <= max_count")
    if max_count > MAX_COUNT:
        raise BadRequest("server.max_count", f"at most {MAX_COUNT} servers per request")
    return_reservation_id = field(body, "return_reservation_id", bool, "server", False, False)
    return CreateRequest(min_count=min_count, max_count=max_count,
                         description=_description(body, version, "server"),
                         security_groups=_security_groups(body, groups),
                         return_reservation_id=return_reservation_id,
                         access_ipv4=_access_ip(body, "accessIPv4", 4, "server"),
                         access_ipv6=_access_ip(body, "accessIPv6", 6, "server"),
                         disk_config=_disk_config(body))


def update_request(body: dict[str, Any], version: Version) -> dict[str, Any]:
    """The stored fields a PUT /servers/{id} body changes: name, and description from 2.19."""
    changes: dict[str, Any] = {}
    name = field(body, "name", str, "server", False)
    if name is not None:
        if not name.strip() or len(name) > 255:
            raise BadRequest("server.name", "must be 1 to 255 characters, not only spaces")
        changes["name"] = name
    if "description" in body:
        changes["description"] = _description(body, version, "server")
    for key, attribute, ip_version in (("accessIPv4", "access_ipv4", 4), ("accessIPv6", "access_ipv6", 6)):
        if key in body:
            changes[attribute] = _access_ip(body, key, ip_version, "server")
    if "OS-DCF:diskConfig" in body:
        changes["disk_config"] = _disk_config(body)
    unknown = sorted(set(body) - {"name", "description", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"})
    if unknown:
        raise BadRequest(f"server.{cut(unknown[0])}", "is not a field that can be updated")
    return changes
