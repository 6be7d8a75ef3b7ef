"""The quota resources of each service, their defaults, and the `quotas:` mapping of config.yaml.

The resources and default values are the real services' (nova.conf [quota],
cinder.conf quota_*, neutron.conf [quotas]); -1 means unlimited. Resources
this API has no objects for yet (server groups, backups, routers, floating
IPs, ...) are shown and settable, as the stock clients expect, and count 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from provisioner.errors import InputError

UNLIMITED = -1
MAX_LIMIT = 0x7FFFFFFF  # Nova's and Neutron's largest settable limit (a signed 32-bit column)
COMPUTE, VOLUME, NETWORK = "compute", "volume", "network"
LIMIT_TEXT = re.compile(r"-?[0-9]{1,10}")  # Nova's pattern for a limit sent as a string, bounded
SERVICES = (COMPUTE, VOLUME, NETWORK)

DEFAULTS: Mapping[str, Mapping[str, int]] = {
    COMPUTE: {
        "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "metadata_items": 128,
        "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
        "server_groups": 10, "server_group_members": 10,
        # nova-network's, kept in 2.1 bodies by Nova itself: unlimited there too.
        "fixed_ips": UNLIMITED, "floating_ips": UNLIMITED, "security_groups": UNLIMITED,
        "security_group_rules": UNLIMITED,
    },
    VOLUME: {
        "volumes": 10, "gigabytes": 1000, "snapshots": 10, "per_volume_gigabytes": UNLIMITED,
        "backups": 10, "backup_gigabytes": 1000, "groups": 10,
    },
    NETWORK: {
        "network": 100, "subnet": 100, "subnetpool": UNLIMITED, "port": 500, "router": 10, "floatingip": 50,
        "security_group": 10, "security_group_rule": 100, "router_route": 30, "rbac_policy": 10,
    },
}


@dataclass(frozen=True)
class QuotaDefaults:
    """The limits a project has until an admin sets its own: per service, per resource."""

    limits: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: DEFAULTS)

    def of(self, service: str) -> Mapping[str, int]:
        """One service's default limits, every resource present."""
        return self.limits[service]


def limit_value(value: Any) -> int | None:
    """A limit from a request or the file: an integer (or a string of one) from -1 to MAX_LIMIT; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not LIMIT_TEXT.fullmatch(value):
            return None
        value = int(value)
    if not isinstance(value, int) or not UNLIMITED <= value <= MAX_LIMIT:
        return None
    return value


def parse_defaults(data: Any, where: str) -> QuotaDefaults:
    """config.yaml's `quotas:` mapping (service -> resource -> limit) over the services' defaults;
    an unknown service or resource, or a value that is not a limit, is an error naming the key."""
    if data is None:
        return QuotaDefaults()
    if not isinstance(data, dict):
        raise InputError(where, "key 'quotas' must map compute, volume and network to resource limits")
    unknown = sorted(str(k)[:40] for k in data if k not in SERVICES)
    if unknown:
        raise InputError(where, f"key 'quotas': unknown service(s) {', '.join(unknown)}; "
                                f"use {', '.join(SERVICES)}")
    limits = {}
    for service in SERVICES:
        given = data.get(service) or {}
        at = f"quotas.{service}"
        if not isinstance(given, dict):
            raise InputError(where, f"key {at!r} must map resource names to limits")
        bad = sorted(str(k)[:40] for k in given if k not in DEFAULTS[service])
        if bad:
            raise InputError(where, f"key {at!r}: unknown resource(s) {', '.join(bad)}; "
                                    f"use {', '.join(DEFAULTS[service])}")
        merged = dict(DEFAULTS[service])
        for resource, value in given.items():
            limit = limit_value(value) if not isinstance(value, str) else None
            if limit is None:
                raise InputError(where, f"key '{at}.{resource}': not an integer from -1 (unlimited) "
                                        f"to {MAX_LIMIT}")
            merged[resource] = limit
        limits[service] = merged
    return QuotaDefaults(limits)
