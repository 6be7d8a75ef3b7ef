"""Application credential access rules: which requests a token from such a credential may make.

A rule names a service type, a method and a path under that service's endpoint, where `*` matches one path
segment and `**` any number of them (as keystonemiddleware matches them). A token from a credential with rules
may make only the requests one of them matches; a credential without rules is not limited. Rules belong to
their user and are shared by that user's credentials that ask for the same one; one in use cannot be deleted.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from api.db import Database
from api.errors import Forbidden, NotFound

TABLE = "api_access_rules"
# The service type a request is for, by the first segment of its path here.
SERVICE_OF_MOUNT = {"identity": ("identity",), "compute": ("compute",), "image": ("image",),
                    "network": ("network",), "volume": ("volumev3", "block-storage", "volume")}


@dataclass(frozen=True)
class AccessRule:
    """One rule of a user."""

    id: str
    user_id: str
    service: str
    path: str
    method: str

    def view(self) -> dict[str, Any]:
        """As Keystone shows it."""
        return {"id": self.id, "service": self.service, "path": self.path, "method": self.method}


def parse_rules(value: Any) -> list[tuple[str, str, str]]:
    """(service, path, method) of each rule of a create request (each rule's form, its bounds and the count are
    api/openapi.yaml's, checked by the hook)."""
    return [(rule["service"], rule["path"], rule["method"]) for rule in value]


@lru_cache(maxsize=1024)
def _pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.split("/"):
        parts.append(".*" if segment == "**" else "[^/]*" if segment == "*" else re.escape(segment))
    return re.compile("/".join(parts))


def allows(rules: tuple[AccessRule, ...], method: str, path: str) -> bool:
    """Whether a request (`path` as served here, e.g. /compute/v2.1/servers) matches one of `rules`."""
    mount, _, rest = path.lstrip("/").partition("/")
    services = SERVICE_OF_MOUNT.get(mount, ())
    relative = "/" + rest
    return any(rule.service in services and rule.method == method and _pattern(rule.path).fullmatch(relative)
               for rule in rules)


class AccessRules:
    """The table of users' access rules."""

    def __init__(self, db: Database):
        self.db = db
        db.create(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
                  f"data TEXT NOT NULL{db.dialect.rowid_column})")

    def _load(self, data: str) -> AccessRule:
        return AccessRule(**json.loads(data))

    def of_user(self, user_id: str) -> list[AccessRule]:
        """The user's rules, oldest first."""
        return [self._load(data) for (data,) in self.db.connect().execute(
            f"SELECT data FROM {TABLE} WHERE user_id = ? ORDER BY rowid", (user_id,))]

    def ensure(self, user_id: str, wanted: list[tuple[str, str, str]]) -> tuple[AccessRule, ...]:
        """The user's rules for `wanted`, created where the user has none the same."""
        found = []
        with self.db.transaction() as conn:
            mine = [self._load(data) for (data,) in conn.execute(
                f"SELECT data FROM {TABLE} WHERE user_id = ?", (user_id,))]
            for service, path, method in wanted:
                rule = next((r for r in mine if (r.service, r.path, r.method) == (service, path, method)), None)
                if rule is None:
                    rule = AccessRule(uuid.uuid4().hex, user_id, service, path, method)
                    conn.execute(f"INSERT INTO {TABLE} (id, user_id, data) VALUES (?, ?, ?)",
                                 (rule.id, user_id, json.dumps(vars(rule))))
                    mine.append(rule)
                found.append(rule)
        return tuple(dict.fromkeys(found))

    def get(self, user_id: str, rule_id: str) -> AccessRule:
        """The user's rule with this id; NotFound otherwise."""
        row = self.db.connect().execute(f"SELECT data FROM {TABLE} WHERE id = ? AND user_id = ?",
                                        (rule_id, user_id)).fetchone()
        if row is None:
            raise NotFound(f"could not find access rule: {rule_id[:64]}")
        return self._load(row[0])

    def delete(self, user_id: str, rule_id: str, in_use: bool) -> None:
        """Remove the user's rule; Forbidden while a credential uses it (`in_use`)."""
        self.get(user_id, rule_id)
        if in_use:
            raise Forbidden("the access rule is used by an application credential: delete that first")
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE id = ?", (rule_id,))

    def forget_user(self, user_id: str) -> None:
        """Remove every rule of a deleted user."""
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE user_id = ?", (user_id,))
