"""Keystone's records: users and projects from the configuration file, plus projects created through the API."""

from __future__ import annotations

import sqlite3
import uuid

from api.config import ApiConfig, Project, User
from api.db import Database, Table
from api.errors import BadRequest, Conflict, NotFound


class IdentityStore:
    """Users (file only) and projects (file + `api_projects`)."""

    def __init__(self, config: ApiConfig, db: Database):
        self.config = config
        self.created = Table(db, "projects", Project, scope="domain_id")

    def projects(self) -> list[Project]:
        """Every project: the file's first, then those created through the API."""
        return [*self.config.projects, *self.created.list()]

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
        return self.config.users

    def user(self, user_id: str) -> User:
        """The user with this id; NotFound otherwise."""
        found = next((u for u in self.config.users if u.id == user_id), None)
        if found is None:
            raise NotFound(f"could not find user: {user_id}")
        return found

    def projects_of(self, user: User) -> list[Project]:
        """The projects `user` has a role on."""
        return [p for p in self.projects() if p.name in user.roles]
