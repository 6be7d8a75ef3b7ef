"""Users, projects and role grants in the configuration file: the one store `provision users set` and Keystone's
admin API both write, each edit under a lock, validated before the file is replaced."""

from __future__ import annotations

import fcntl
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from api.config import DOMAIN_ID, parse_config, read_document, stable_id, write_document
from api.identity.passwords import hash_password
from provisioner.errors import InputError

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 4096  # Keystone's max_password_length
MAX_USER_NAME_CHARS = 255  # Keystone's user name column
MAX_PROJECT_NAME_CHARS = 64  # Keystone's project name column
MAX_TEXT_CHARS = 255  # description, email
MAX_USERS = 2000  # every worker re-reads the whole file after each edit
MAX_PROJECTS = 2000
MAX_ROLE_NAME_CHARS = 64


class AccountError(InputError):
    """A refused account edit: `where` names the field, `problem` says why; `status` is the HTTP code it maps to."""

    def __init__(self, where: str, problem: str, status: int = 400):
        super().__init__(where, problem)
        self.status = status


def _cut(value: str) -> str:
    return repr(value[:40])


@contextmanager
def editing(path: Path) -> Iterator[dict[str, Any]]:
    """The document, for one read-modify-write under an exclusive lock (`<file>.lock`): edits by the CLI and by
    every API worker are serialised. Written (and every server told) only if the block returns and the result
    validates; nothing is written otherwise."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a", opener=lambda name, flags: os.open(name, flags, 0o600)) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        data = read_document(path)
        yield data
        parse_config(data, str(path))
        write_document(path, data)


def check_password(password: Any, where: str) -> str:
    """`password` if it is a string of MIN..MAX_PASSWORD_CHARS characters."""
    if not isinstance(password, str):
        raise AccountError(where, "must be a string")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(where, f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(where, f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    return password


def check_name(name: Any, where: str, limit: int) -> str:
    """`name` if it is 1..limit characters without control characters or surrounding blanks."""
    if not isinstance(name, str) or not name:
        raise AccountError(where, "must be a non-empty string")
    if len(name) > limit:
        raise AccountError(where, f"must have at most {limit} characters")
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise AccountError(where, "must not contain control characters or leading/trailing blanks")
    return name


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise AccountError(where, "must be a string")
    if len(value) > MAX_TEXT_CHARS:
        raise AccountError(where, f"must have at most {MAX_TEXT_CHARS} characters")
    return value


def _project_entry(data: dict[str, Any], project_id: str) -> dict[str, Any] | None:
    return next((p for p in data.get("projects") or [] if _project_id(p) == project_id), None)


def _project_id(entry: dict[str, Any]) -> str:
    return str(entry.get("id") or stable_id("project", entry["name"]))


def _user_entry(data: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    return next((u for u in data.get("users") or [] if str(u.get("id") or stable_id("user", u["name"])) == user_id),
                None)


def set_user(path: Path, name: str, password: str, project: str, roles: list[str]) -> bool:
    """Create `name` (True) or give it a new password and these roles on `project` (False).

    The project is added to the file if missing; the result is validated
    before the file is replaced.
    """
    check_name(name, f"user {name[:40]!r}", MAX_USER_NAME_CHARS)
    check_password(password, f"user {name[:40]!r}")
    password_hash = hash_password(password)  # outside the lock: 16 MiB and tens of milliseconds
    with editing(path) as data:
        projects = data.setdefault("projects", [])
        if not any(p.get("name") == project for p in projects):
            check_name(project, "project", MAX_PROJECT_NAME_CHARS)
            projects.append({"name": project})
        users = data.setdefault("users", [])
        entry = next((u for u in users if u.get("name") == name), None)
        created = entry is None
        if created:
            entry = {"name": name, "roles": {}}
            users.append(entry)
        entry["password_hash"] = password_hash
        entry.setdefault("roles", {})[project] = sorted(set(roles))
    return created


def create_user(path: Path, name: Any, password: Any, email: Any = None, description: Any = "",
                enabled: bool = True, default_project_id: str | None = None) -> str:
    """A new user (no roles yet); its id. Conflict (409) if the name is taken, 403 past MAX_USERS."""
    check_name(name, "user.name", MAX_USER_NAME_CHARS)
    password_hash = hash_password(check_password(password, "user.password"))
    user_id = uuid.uuid4().hex
    entry: dict[str, Any] = {"name": name, "id": user_id, "password_hash": password_hash, "roles": {}}
    if email is not None:
        entry["email"] = _text(email, "user.email")
    if description:
        entry["description"] = _text(description, "user.description")
    if not enabled:
        entry["enabled"] = False
    with editing(path) as data:
        users = data.setdefault("users", [])
        if len(users) >= MAX_USERS:
            raise AccountError("user", f"there are already {MAX_USERS} users (the limit)", 403)
        if any(u.get("name") == name for u in users):
            raise AccountError("user.name", f"a user named {_cut(name)} already exists", 409)
        if default_project_id is not None:
            if _project_entry(data, default_project_id) is None:
                raise AccountError("user.default_project_id", "no such project", 400)
            entry["default_project_id"] = default_project_id
        users.append(entry)
    return user_id


def update_user(path: Path, user_id: str, changes: dict[str, Any]) -> None:
    """Apply Keystone's user PATCH fields (name, password, email, description, enabled, default_project_id)."""
    known = {"name", "password", "email", "description", "enabled", "default_project_id", "domain_id", "options"}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise AccountError(f"user.{unknown[0][:40]}", "is not a field this server can change")
    if changes.get("domain_id", DOMAIN_ID) != DOMAIN_ID:
        raise AccountError("user.domain_id", "a user cannot move to another domain")
    if "name" in changes:
        check_name(changes["name"], "user.name", MAX_USER_NAME_CHARS)
    if "enabled" in changes and not isinstance(changes["enabled"], bool):
        raise AccountError("user.enabled", "must be true or false")
    password_hash = (hash_password(check_password(changes["password"], "user.password"))
                     if "password" in changes else None)
    with editing(path) as data:
        entry = _user_entry(data, user_id)
        if entry is None:
            raise AccountError("user", "could not find the user", 404)
        if "name" in changes and changes["name"] != entry["name"]:
            if any(u.get("name") == changes["name"] for u in data["users"]):
                raise AccountError("user.name", f"a user named {_cut(changes['name'])} already exists", 409)
            entry.setdefault("id", user_id)  # the id was derived from the old name: keep it
            entry["name"] = changes["name"]
        if password_hash is not None:
            entry["password_hash"] = password_hash
        for key in ("email", "description"):
            if changes.get(key) is not None:
                entry[key] = _text(changes[key], f"user.{key}")
        if "enabled" in changes:
            entry["enabled"] = changes["enabled"]
        if "default_project_id" in changes:
            project_id = changes["default_project_id"]
            if project_id is not None and (not isinstance(project_id, str) or _project_entry(data, project_id) is None):
                raise AccountError("user.default_project_id", "no such project")
            entry["default_project_id"] = project_id


def delete_user(path: Path, user_id: str) -> None:
    """Remove the user: its tokens stop working at once (api/identity/verifier.py finds no user)."""
    with editing(path) as data:
        entry = _user_entry(data, user_id)
        if entry is None:
            raise AccountError("user", "could not find the user", 404)
        data["users"].remove(entry)


def create_project(path: Path, name: Any, description: Any = "", taken: bool = False) -> str:
    """A new project in the file; its id. `taken`: the name is already used elsewhere (409)."""
    check_name(name, "project.name", MAX_PROJECT_NAME_CHARS)
    description = _text(description or "", "project.description")
    project_id = uuid.uuid4().hex
    with editing(path) as data:
        projects = data.setdefault("projects", [])
        if taken or any(p.get("name") == name for p in projects):
            raise AccountError("project.name", f"a project named {_cut(name)} already exists", 409)
        if len(projects) >= MAX_PROJECTS:
            raise AccountError("project", f"there are already {MAX_PROJECTS} projects (the limit)", 403)
        projects.append({"name": name, "id": project_id, **({"description": description} if description else {})})
    return project_id


def adopt_project(path: Path, project_id: str, name: str, description: str) -> None:
    """Copy a project that only the database knows (created through the API before projects lived in this file)
    into the file under its id, so roles can be granted on it."""
    with editing(path) as data:
        projects = data.setdefault("projects", [])
        if _project_entry(data, project_id) is None:
            projects.append({"name": name, "id": project_id, **({"description": description} if description else {})})


def update_project(path: Path, project_id: str, name: str | None, description: str | None,
                   enabled: bool | None = None) -> None:
    """Rename (roles follow: they are keyed by name), describe, disable or enable a project of the file."""
    if name is not None:
        check_name(name, "project.name", MAX_PROJECT_NAME_CHARS)
    if description is not None:
        _text(description, "project.description")
    with editing(path) as data:
        entry = _project_entry(data, project_id)
        if entry is None:
            raise AccountError("project", "could not find the project", 404)
        if name is not None and name != entry["name"]:
            if any(p.get("name") == name for p in data["projects"]):
                raise AccountError("project.name", f"a project named {_cut(name)} already exists", 409)
            old = entry["name"]
            entry["id"] = project_id
            entry["name"] = name
            for user in data.get("users") or []:
                if old in (user.get("roles") or {}):
                    user["roles"][name] = user["roles"].pop(old)
        if description is not None:
            entry["description"] = description
        if enabled is not None:
            entry["enabled"] = enabled


def delete_project(path: Path, project_id: str) -> bool:
    """Remove a project of the file and every role on it; False if the file has no such project."""
    with editing(path) as data:
        entry = _project_entry(data, project_id)
        if entry is None:
            return False
        data["projects"].remove(entry)
        for user in data.get("users") or []:
            (user.get("roles") or {}).pop(entry["name"], None)
    return True


def grant_role(path: Path, project_id: str, user_id: str, role: str) -> None:
    """Give the user `role` on the project (idempotent, as Keystone's PUT)."""
    check_name(role, "role", MAX_ROLE_NAME_CHARS)
    with editing(path) as data:
        project, user = _project_entry(data, project_id), _user_entry(data, user_id)
        if project is None or user is None:
            raise AccountError("project" if project is None else "user", "could not find it", 404)
        granted = user.setdefault("roles", {}).setdefault(project["name"], [])
        if role not in granted:
            granted.append(role)


def revoke_role(path: Path, project_id: str, user_id: str, role: str) -> None:
    """Take `role` on the project from the user; 404 if the user does not have it there."""
    with editing(path) as data:
        project, user = _project_entry(data, project_id), _user_entry(data, user_id)
        granted = (user.get("roles") or {}).get(project["name"]) if project and user else None
        if not granted or role not in granted:
            raise AccountError("role", "the user has no such role on the project", 404)
        granted.remove(role)
        if not granted:
            del user["roles"][project["name"]]
