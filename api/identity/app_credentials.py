"""Application credentials: a user's secret for one project and a subset of its roles there, usable as the
`application_credential` auth method. Only a scrypt hash of the secret is kept (state.db, 0600 like the rest of the
root); the secret itself is shown once, in the create response."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from api.change_counter import ChangeCounters, Slot
from api.db import Database
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.identity.access_rules import AccessRule, AccessRules

TABLE = "api_application_credentials"
MAX_PER_USER = 100  # Keystone's default application credential quota is unlimited; a bound keeps listing cheap


@dataclass(frozen=True)
class AppCredential:
    """One application credential; `expires_at` is epoch seconds or None (never)."""

    id: str
    user_id: str
    project_id: str
    name: str
    description: str
    secret_hash: str
    roles: tuple[str, ...]
    expires_at: float | None
    unrestricted: bool
    access_rules: tuple[AccessRule, ...] = ()  # none: any request; else only those one of them matches

    def expired(self, now: float | None = None) -> bool:
        """Whether it can no longer be used."""
        return self.expires_at is not None and self.expires_at <= (time.time() if now is None else now)


def new_secret() -> str:
    """A generated secret (Keystone's are 64 url-safe characters too)."""
    return secrets.token_urlsafe(48)


def parse_expiry(value: Any) -> float | None:
    """`expires_at` of a create request: None, or an ISO 8601 time (naive means UTC) in the future."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("application_credential.expires_at", "is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    epoch = moment.timestamp()
    if epoch <= time.time():
        raise BadRequest("application_credential.expires_at", "is in the past")
    return epoch


def format_expiry(epoch: float | None) -> str | None:
    """As Keystone shows it: UTC without a zone suffix, with microseconds."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


class AppCredentials:
    """The table of application credentials."""

    def __init__(self, db: Database, counters: ChangeCounters):
        self.db = db
        self.counters = counters
        self.rules = AccessRules(db)
        db.create(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, "
            f"data TEXT NOT NULL, UNIQUE (user_id, name){db.dialect.rowid_column})")

    @staticmethod
    def _load(data: str) -> AppCredential:
        fields = json.loads(data)
        return AppCredential(**{**fields, "roles": tuple(fields["roles"]),
                                "access_rules": tuple(AccessRule(**r) for r in fields.get("access_rules", ()))})

    @staticmethod
    def _dump(credential: AppCredential) -> str:
        return json.dumps({**vars(credential), "access_rules": [vars(r) for r in credential.access_rules]})

    def create(self, credential: AppCredential) -> AppCredential:
        """Store `credential`; Conflict if its user has one of that name, Forbidden past MAX_PER_USER."""
        with self.db.transaction() as conn:
            (count,) = conn.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE user_id = ?",
                                    (credential.user_id,)).fetchone()
            if count >= MAX_PER_USER:
                raise Forbidden(f"a user may have at most {MAX_PER_USER} application credentials")
            if conn.execute(f"SELECT 1 FROM {TABLE} WHERE user_id = ? AND name = ?",
                            (credential.user_id, credential.name)).fetchone():
                raise Conflict("application_credential.name: the user already has one of that name")
            conn.execute(f"INSERT INTO {TABLE} (id, user_id, name, data) VALUES (?, ?, ?, ?)",
                         (credential.id, credential.user_id, credential.name, self._dump(credential)))
        return credential

    def of_user(self, user_id: str, name: str | None = None) -> list[AppCredential]:
        """The user's credentials (those called `name` only, if given)."""
        query, args = f"SELECT data FROM {TABLE} WHERE user_id = ?", [user_id]
        if name is not None:
            query, args = query + " AND name = ?", [user_id, name]
        return [self._load(data) for (data,) in self.db.connect().execute(query + " ORDER BY rowid", args)]

    def get(self, credential_id: str) -> AppCredential | None:
        """The credential with this id, or None."""
        row = self.db.connect().execute(f"SELECT data FROM {TABLE} WHERE id = ?", (credential_id,)).fetchone()
        return self._load(row[0]) if row else None

    def of(self, user_id: str, credential_id: str) -> AppCredential:
        """The user's credential with this id; NotFound otherwise (another user's too)."""
        found = self.get(credential_id)
        if found is None or found.user_id != user_id:
            raise NotFound(f"could not find application credential: {credential_id[:64]}")
        return found

    def delete(self, user_id: str, credential_id: str) -> None:
        """Remove the user's credential; tokens issued for it are refused from the next request on."""
        self.of(user_id, credential_id)
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE id = ?", (credential_id,))
        self.counters.bump(Slot.CREDENTIALS)  # after the commit: every worker's token checks look again

    def forget_user(self, user_id: str) -> None:
        """Remove every credential and access rule of a deleted user (one re-created by the CLI under its name
        gets its id)."""
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE user_id = ?", (user_id,))
        self.rules.forget_user(user_id)
        self.counters.bump(Slot.CREDENTIALS)

    def delete_rule(self, user_id: str, rule_id: str) -> None:
        """Remove the user's access rule; Forbidden while one of its credentials uses it."""
        in_use = any(rule.id == rule_id for c in self.of_user(user_id) for rule in c.access_rules)
        self.rules.delete(user_id, rule_id, in_use)

    def exists(self, credential_id: str) -> bool:
        """Whether the credential is still there (not deleted)."""
        return self.db.connect().execute(f"SELECT 1 FROM {TABLE} WHERE id = ?",
                                         (credential_id,)).fetchone() is not None


def new_id() -> str:
    """A Keystone-style id."""
    return uuid.uuid4().hex
