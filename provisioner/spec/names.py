"""Domain names reach paths, XML, YAML, HCL and shell: validate them once, here."""

from __future__ import annotations

import re

from provisioner.errors import InputError
from provisioner.excerpt import cut

# Subcommands of bin/provision: a domain named like one could never be addressed.
RESERVED = frozenset(
    {"render", "plan", "apply", "destroy", "status", "jobs", "worker", "serve",
     "image", "openrc", "clouds-yaml", "users", "help", "version", "provision"}
)

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


def validate_domain_name(name: str, where: str = "domain name") -> str:
    """Return `name` if it is a safe lower-case DNS name, else raise InputError."""
    if not isinstance(name, str) or not name:
        raise InputError(where, "is empty")
    if len(name) > 253:
        raise InputError(where, f"{cut(name)} is longer than 253 characters")
    if not _NAME.fullmatch(name):
        raise InputError(
            where,
            f"{cut(name)} is not a valid domain name: use lower-case letters, digits, "
            "'-' and '.', with no leading/trailing '-' or '.', no '..', '/', spaces or "
            "shell/template characters",
        )
    if name in RESERVED:
        raise InputError(where, f"{name!r} is a provision subcommand and cannot name a domain")
    return name
