"""The first API user: `serve` on a root without users creates `admin` with a generated password.

The password is written once to `<root>/api/admin-password` (0600), the only
place it exists in clear; the configuration keeps its scrypt hash like any
other user's. With users already configured nothing is created, so serving
twice is harmless.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from api.accounts import set_user
from api.config import config_path, read_document
from provisioner.layout import Layout

ADMIN = "admin"


def password_path(layout: Layout) -> Path:
    """Where the bootstrapped admin's password is kept."""
    return layout.root / "api" / "admin-password"


@dataclass(frozen=True)
class Bootstrap:
    """What `ensure_admin` found or did: whether it created the user, and the password file if there is one."""

    created: bool
    password_file: Path | None


def ensure_admin(layout: Layout) -> Bootstrap:
    """Create `admin` (role admin on project admin) with a generated password if the root has no user yet."""
    path = password_path(layout)
    if read_document(config_path(layout)).get("users"):
        return Bootstrap(False, path if path.is_file() else None)
    password = secrets.token_urlsafe(18)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written before the user exists, so a crash in between never leaves a user nobody can log in as.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(password + "\n")
    os.replace(tmp, path)
    set_user(config_path(layout), ADMIN, password, ADMIN, [ADMIN])
    return Bootstrap(True, path)
