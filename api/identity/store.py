"""Keystone's records: users and projects from the configuration file, plus projects created through the API."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from api import accounts
from api.change_counter import RECHECK_SECONDS, ChangeCounters, Slot
from api.config import DOMAIN_ID, ApiConfig, Project, User, load_config, stable_id
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from provisioner.errors import InputError

log = logging.getLogger("api.identity")
# Keystone's bootstrap roles (and the service role Nova's and Cinder's service APIs ask for).
DEFAULT_ROLES = ("admin", "manager", "member", "reader", "service")


class Accounts:
    """Users and projects of the configuration file, re-read when the file changes.

    So `python -m api user …` (create, rotate) takes effect without a restart:
    every write through api.config.write_document bumps the shared change
    counter, which this checks on each call without a system call; a file
    replaced by other means is noticed by a stat at most RECHECK_SECONDS later.
    A file made invalid meanwhile keeps the last good accounts and is logged.
    """

    def __init__(self, path: Path, config: ApiConfig, counters: ChangeCounters | None = None):
        self.path = path
        self.counters = counters or ChangeCounters.next_to(path)
        self._config = config
        self._seen_changes = self.counters.value(Slot.CREDENTIALS)
        self._stamp = self._stat()
        self._stat_after = time.monotonic() + RECHECK_SECONDS
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        # The file is replaced (os.replace), never rewritten: a new inode marks a change even
        # within the filesystem's timestamp granularity.
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def current(self) -> ApiConfig:
        """The configuration as the file now says."""
        changes = self.counters.value(Slot.CREDENTIALS)  # before the stat: a bump after it is seen next time
        if changes == self._seen_changes and time.monotonic() < self._stat_after:
            return self._config
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                try:
                    self._config = load_config(self.path)
                except InputError as exc:
                    log.error("keeping the previous accounts: %s", exc)
                self._stamp = stamp
            self._seen_changes, self._stat_after = changes, time.monotonic() + RECHECK_SECONDS
        return self._config


class IdentityStore:
    """Users, projects and role grants (the configuration file, through api/accounts.py), plus the projects an
    earlier version created in `api_projects` (read, deleted, and moved into the file when granted a role)."""

    def __init__(self, accounts: Accounts, db: Database):
        self.accounts = accounts
        self.created = Table(db, "projects", Project, scope="domain_id")

    @property
    def path(self) -> Path:
        """The configuration file."""
        return self.accounts.path

    def projects(self) -> list[Project]:
        """Every project: the file's first, then those only the database has."""
        in_file = self.accounts.current().projects
        ids = {p.id for p in in_file}
        return [*in_file, *(p for p in self.created.list() if p.id not in ids)]

    def project_by_id(self, project_id: str) -> Project | None:
        """The project with this id, or None (the file's are looked up first: no database for them)."""
        in_file = next((p for p in self.accounts.current().projects if p.id == project_id), None)
        return in_file or self.created.get(project_id)

    def project(self, project_id: str) -> Project:
        """The project with this id; NotFound otherwise."""
        found = self.project_by_id(project_id)
        if found is None:
            raise NotFound(f"could not find project: {project_id[:64]}")
        return found

    def project_by_name(self, name: str) -> Project | None:
        """The project called `name`, or None (the file's are looked up first: no database for them)."""
        in_file = next((p for p in self.accounts.current().projects if p.name == name), None)
        return in_file or next(iter(self.created.list(name=name)), None)

    def create_project(self, name: str, description: str) -> Project:
        """A new project in the configuration file; Conflict if the name is taken (in the file or the database)."""
        taken = isinstance(name, str) and bool(self.created.list(name=name))
        with account_errors():
            project_id = accounts.create_project(self.path, name, description, taken=taken)
        return self.project(project_id)

    def update_project(self, project_id: str, name: str | None, description: str | None,
                       enabled: bool | None = None) -> Project:
        """Rename, describe, disable or enable a project (one only the database has moves into the file first)."""
        self._in_file(self.project(project_id))
        if name is not None and self.created.list(name=name):
            raise Conflict("project.name: a project of that name already exists")
        with account_errors():
            accounts.update_project(self.path, project_id, name, description, enabled)
        return self.project(project_id)

    def delete_project(self, project_id: str) -> None:
        """Remove the project and every role grant on it."""
        with account_errors():
            in_file = accounts.delete_project(self.path, project_id)
        in_db = self.created.delete(project_id)
        if not in_file and not in_db:
            raise NotFound(f"could not find project: {project_id[:64]}")

    def _in_file(self, project: Project) -> None:
        if not any(p.id == project.id for p in self.accounts.current().projects):
            with account_errors():
                accounts.adopt_project(self.path, project.id, project.name, project.description)
            self.created.delete(project.id)

    def users(self) -> tuple[User, ...]:
        """Every user."""
        return self.accounts.current().users

    def user_by_name(self, name: str) -> User | None:
        """The user called `name`, or None."""
        return self.accounts.current().user_by_name(name)

    def user_by_id(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        return next((u for u in self.users() if u.id == user_id), None)

    def user(self, user_id: str) -> User:
        """The user with this id; NotFound otherwise."""
        found = self.user_by_id(user_id)
        if found is None:
            raise NotFound(f"could not find user: {user_id[:64]}")
        return found

    def create_user(self, body: dict[str, Any]) -> User:
        """A new user from Keystone's user body (name, password, email, description, enabled, default_project_id)."""
        if body.get("domain_id", DOMAIN_ID) != DOMAIN_ID:
            raise BadRequest("user.domain_id", f"only the {DOMAIN_ID!r} domain exists")
        enabled = body.get("enabled", True)
        with account_errors():
            user_id = accounts.create_user(self.path, body.get("name"), body.get("password"), body.get("email"),
                                           body.get("description") or "", enabled, body.get("default_project_id"))
        return self.user(user_id)

    def update_user(self, user_id: str, changes: dict[str, Any]) -> User:
        """Apply a user PATCH; a new password or `enabled: false` refuses the user's earlier tokens."""
        self.user(user_id)
        with account_errors():
            accounts.update_user(self.path, user_id, changes)
        return self.user(user_id)

    def delete_user(self, user_id: str) -> None:
        """Remove the user: its tokens are refused from now on."""
        self.user(user_id)
        with account_errors():
            accounts.delete_user(self.path, user_id)

    def projects_of(self, user: User) -> list[Project]:
        """The projects `user` has a role on."""
        return [p for p in self.projects() if p.name in user.roles]

    def roles(self) -> list[str]:
        """Every role name: Keystone's defaults and any granted in the file."""
        granted = {r for u in self.users() for names in u.roles.values() for r in names}
        return sorted(set(DEFAULT_ROLES) | granted)

    def role_name(self, role_id: str) -> str:
        """The name of the role with this id; NotFound otherwise."""
        found = next((r for r in self.roles() if stable_id("role", r) == role_id), None)
        if found is None:
            raise NotFound(f"could not find role: {role_id[:64]}")
        return found

    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        """Give the user the role on the project (idempotent)."""
        project, role = self.project(project_id), self.role_name(role_id)
        self.user(user_id)
        self._in_file(project)
        with account_errors():
            accounts.grant_role(self.path, project.id, user_id, role)

    def revoke(self, project_id: str, user_id: str, role_id: str) -> None:
        """Take the role on the project from the user; NotFound if not granted."""
        project, role = self.project(project_id), self.role_name(role_id)
        self.user(user_id)
        with account_errors():
            accounts.revoke_role(self.path, project.id, user_id, role)

    def assignments(self) -> list[tuple[User, Project, str]]:
        """Every (user, project, role name) grant."""
        by_name = {p.name: p for p in self.accounts.current().projects}
        return [(u, by_name[name], role) for u in self.users() for name, roles in u.roles.items()
                if name in by_name for role in roles]


@contextmanager
def account_errors() -> Iterator[None]:
    """api/accounts.py's refusals as HTTP errors naming the field."""
    try:
        yield
    except accounts.AccountError as exc:
        error = {403: Forbidden, 404: NotFound, 409: Conflict}.get(exc.status)
        if error is None:
            raise BadRequest(exc.where, exc.message) from None
        raise error(f"{exc.where}: {exc.message}") from None
    except InputError as exc:
        raise BadRequest("", f"the change would leave the accounts invalid: {exc.message}") from None
