"""Creating users and rotating their passwords in the configuration file."""

from __future__ import annotations

from pathlib import Path

from api.config import parse_config, read_document, write_document
from api.identity.passwords import hash_password
from provisioner.errors import InputError


def set_user(path: Path, name: str, password: str, project: str, roles: list[str]) -> bool:
    """Create `name` (True) or give it a new password and these roles on `project` (False).

    The project is added to the file if missing; the result is validated
    before the file is replaced.
    """
    if len(password) < 8:
        raise InputError(f"user {name}", "the password must have at least 8 characters")
    data = read_document(path)
    projects = data.setdefault("projects", [])
    if not any(p.get("name") == project for p in projects):
        projects.append({"name": project})
    users = data.setdefault("users", [])
    entry = next((u for u in users if u.get("name") == name), None)
    created = entry is None
    if created:
        entry = {"name": name, "roles": {}}
        users.append(entry)
    entry["password_hash"] = hash_password(password)
    entry.setdefault("roles", {})[project] = sorted(set(roles))
    parse_config(data, str(path))
    write_document(path, data)
    return created
