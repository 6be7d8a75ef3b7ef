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

from api.compute.block_devices import TRUE
from api.errors import BadRequest
from api.http import given
from api.network.models import SecurityGroup
from provisioner.excerpt import cut

MAX_COUNT = 100  # servers one request may ask for (Nova's bound is the quota; this one holds with -1 quotas)
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
    """min_count/max_count: a positive integer given as a number or as decimal text (the schema's forms)."""
    value = body.get(key)
    return default if value is None else int(value)


def _access_ip(body: dict[str, Any], key: str) -> str:
    """accessIPv4/accessIPv6 (an address of that version, or empty: the schema's formats), normalised as Nova
    stores it ('::babe:220.12.22.2' is '::babe:dc0c:1602')."""
    value = given(body, key, "")
    return str(ipaddress.ip_address(value)) if value else ""


def admin_password(body: dict[str, Any]) -> str | None:
    """adminPass: the admin user's password on the new guest (a SHA-512 crypt hash in its spec; the schema
    bounds its length); None for none or empty."""
    return given(body, "adminPass", None) or None


def _security_groups(body: dict[str, Any], groups: list[SecurityGroup]) -> tuple[str, ...]:
    """The names of the requested groups (by name or id, as Nova resolves them in Neutron), `default` if none."""
    names: list[str] = []
    for index, entry in enumerate(given(body, "security_groups", [])):  # each {name: a string}: the schema's
        where = f"server.security_groups[{index}].name"
        wanted = entry["name"]
        found = next((g for g in groups if wanted in (g.name, g.id)), None)
        if found is None:
            raise BadRequest(where, f"security group {cut(wanted)} not found for project")
        if found.name not in names:
            names.append(found.name)
    return tuple(names) or ("default",)


def create_request(body: dict[str, Any], groups: list[SecurityGroup]) -> CreateRequest:
    """The Nova-level fields of a create body (its form checked by api/openapi.yaml's POST /servers schema),
    with the checks the schema cannot make: the counts' order and bound, the groups exist for the caller."""
    min_count = _count(body, "min_count", 1)
    max_count = _count(body, "max_count", min_count)
    if min_count > max_count:
        raise BadRequest("server.min_count", "must be <= max_count")
    if max_count > MAX_COUNT:
        raise BadRequest("server.max_count", f"at most {MAX_COUNT} servers per request")
    return CreateRequest(min_count=min_count, max_count=max_count,
                         description=given(body, "description", None),
                         security_groups=_security_groups(body, groups),
                         return_reservation_id=str(given(body, "return_reservation_id", False)).lower() in TRUE,
                         access_ipv4=_access_ip(body, "accessIPv4"),
                         access_ipv6=_access_ip(body, "accessIPv6"),
                         disk_config=given(body, "OS-DCF:diskConfig", "MANUAL"))


def update_request(body: dict[str, Any]) -> dict[str, Any]:
    """The stored fields a PUT /servers/{id} (or a rebuild's same members) changes: name, description,
    accessIPv4/6, OS-DCF:diskConfig. Their form, description's microversion and unknown members are the
    schema's (api/openapi.yaml, checked by api/validation.py); a null name changes nothing, a null address
    clears it."""
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        changes["name"] = body["name"]
    if "description" in body:
        changes["description"] = body["description"]
    for key, attribute in (("accessIPv4", "access_ipv4"), ("accessIPv6", "access_ipv6")):
        if key in body:
            changes[attribute] = _access_ip(body, key)
    if "OS-DCF:diskConfig" in body:
        changes["disk_config"] = body["OS-DCF:diskConfig"]
    return changes
