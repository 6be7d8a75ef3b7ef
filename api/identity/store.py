"""Keystone's records: users and projects from the configuration file, plus projects created through the API."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from api.change_counter import RECHECK_SECONDS, ChangeCounters, Slot
from api.config import ApiConfig, Project, User, load_config
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound
from provisioner.errors import InputError

log = logging.getLogger("api.identity")


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
    """Users (file only) and projects (file + `api_projects`)."""

    def __init__(self, accounts: Accounts, db: Database):
        self.accounts = accounts
        self.created = Table(db, "projects", Project, scope="domain_id")

    def projects(self) -> list[Project]:
        """Every project: the file's first, then those created through the API."""
        return [*self.accounts.current().projects, *self.created.list()]

    def project_by_id(self, project_id: str) -> Project | None:
        """The project with this id, or None (the file's are looked up first: no database for them)."""
        in_file = next((p for p in self.accounts.current().projects if p.id == project_id), None)
        return in_file or self.created.get(project_id)

    def project(self, project_id: str) -> Project:
        """The project with this id; NotFound otherwise."""
        found = self.project_by_id(project_id)
        if found is None:
            raise NotFound(f"could not find project: {project_id}")
        return found

    def project_by_name(self, name: str) -> Project | None:
        """The project called `name`, or None (the file's are looked up first: no database for them)."""
        in_file = next((p for p in self.accounts.current().projects if p.name == name), None)
        return in_file or next(iter(self.created.list(name=name)), None)

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
