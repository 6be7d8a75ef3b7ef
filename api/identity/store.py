"""Keystone's records: users and projects from the configuration file, plus projects created through the API."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from pathlib import Path

from api.config import ApiConfig, Project, User, load_config
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from provisioner.errors import InputError

log = logging.getLogger("api.identity")


class Accounts:
    """Users and projects of the configuration file, re-read when the file changes.

    So `python -m api user …` (create, rotate) takes effect without a restart.
    A file made invalid meanwhile keeps the last good accounts and is logged.
    """

    def __init__(self, path: Path, config: ApiConfig):
        self.path = path
        self._config = config
        self._stamp = self._stat()
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
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._config = load_config(self.path)
                    except InputError as exc:
                        log.error("keeping the previous accounts: %s", exc)
                    self._stamp = stamp
        return self._config


class IdentityStore:
    """Users (file only) and projects (file + `api_projects`)."""

    def __init__(self, accounts: Accounts, db: Database):
        self.accounts = accounts
        self.created = Table(db, "projects", Project, scope="domain_id")

    def projects(self) -> list[Project]:
        """Every project: the file's first, then those created through the API."""
        return [*self.accounts.current().projects, *self.created.list()]

    def project(self, project_id: str) -> Project:
        """The project with this id; NotFound otherwise."""
        found = next((p for p in self.projects() if p.id == project_id), None)
        if found is None:
            raise NotFound(f"could not find project: {project_id}")
        return found

    def project_by_name(self, name: str) -> Project | None:
        """The project called `name`, or None."""
        return next((p for p in self.projects() if p.name == name), None)

    def create_project(self, name: str, description: str) -> Project:
        """A new project; Conflict if the name is taken."""
        if not name or len(name) > 64:
            raise BadRequest("project.name", "must be 1 to 64 characters")
        if self.project_by_name(name) is not None:
            raise Conflict(f"a project named {name!r} already exists")
        project = Project(id=uuid.uuid4().hex, name=name, description=description)
        try:
            return self.created.insert(project)
        except sqlite3.IntegrityError:
            raise Conflict(f"a project named {name!r} already exists") from None

    def users(self) -> tuple[User, ...]:
        """Every user."""
        return self.accounts.current().users

    def user_by_name(self, name: str) -> User | None:
        """The user called `name`, or None."""
        return self.accounts.current().user_by_name(name)

    def user(self, user_id: str) -> User:
        """The user with this id; NotFound otherwise."""
        found = next((u for u in self.users() if u.id == user_id), None)
        if found is None:
            raise NotFound(f"could not find user: {user_id}")
        return found

    def projects_of(self, user: User) -> list[Project]:
        """The projects `user` has a role on."""
        return [p for p in self.projects() if p.name in user.roles]
