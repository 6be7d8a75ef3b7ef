"""Login sessions of the status page: a random id in a cookie, its SHA-256 in state.db.

The table is in the API's SQLite database, so every pre-forked worker process
sees a login, a logout and an expiry at once; a signed cookie alone could be
neither revoked at logout nor expired after idling. Only the id's digest is
stored: a copy of state.db opens no session.

A session ends after `ttl` seconds, after `idle` seconds without a request,
at logout, and as soon as its user's password or roles change (the credential
stamp tokens carry, api/identity/tokens.py), or the user is disabled or removed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from api.config import User
from api.db import Database
from provisioner.errors import ProvisionError

TABLE = "api_web_sessions"
ID_BYTES = 32
# `seen` is written at most this often per session: a page load is then a read only (idle expiry ±1 min).
SEEN_EVERY = 60.0


@dataclass(frozen=True)
class WebSettings:
    """Session lifetimes and the page's refresh interval, from the environment (defaults: 8 h, 1 h, 15 s)."""

    ttl: int = 8 * 3600
    idle: int = 3600
    refresh: int = 15  # seconds between auto-refreshes of a status page; 0: none

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        """PROVISION_WEB_SESSION_TTL, PROVISION_WEB_SESSION_IDLE, PROVISION_WEB_REFRESH (whole seconds)."""
        env = os.environ if environ is None else environ
        default = cls()

        def seconds(name: str, fallback: int, minimum: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return fallback
            if not raw.isdigit() or int(raw) < minimum:
                raise ProvisionError(f"{name}: use a whole number of seconds, at least {minimum}")
            return int(raw)

        return cls(seconds("PROVISION_WEB_SESSION_TTL", default.ttl, 60),
                   seconds("PROVISION_WEB_SESSION_IDLE", default.idle, 60),
                   seconds("PROVISION_WEB_REFRESH", default.refresh, 0))


@dataclass(frozen=True)
class Session:
    """A live session: whose, and the token every POST of it must carry."""

    digest: str
    user: User
    csrf: str


def digest(session_id: str) -> str:
    """What the table keys a session id by."""
    return hashlib.sha256(session_id.encode(errors="surrogatepass")).hexdigest()


class SessionStore:
    """Creates, finds and ends sessions; `users` gives the current accounts, `stamp` a user's credential stamp."""

    def __init__(self, db: Database, settings: WebSettings, users: Callable[[], tuple[User, ...]],
                 stamp: Callable[[User], str]):
        self.db = db
        self.settings = settings
        self.users = users
        self.stamp = stamp
        db.create(f"CREATE TABLE IF NOT EXISTS {TABLE} (digest TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
                  "stamp TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL, seen REAL NOT NULL)")

    def create(self, user: User) -> str:
        """A new session for `user`: its id (for the cookie only; never stored)."""
        session_id = secrets.token_urlsafe(ID_BYTES)
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute(f"DELETE FROM {TABLE} WHERE created <= ? OR seen <= ?",
                         (now - self.settings.ttl, now - self.settings.idle))
            conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                         (digest(session_id), user.id, self.stamp(user), secrets.token_urlsafe(ID_BYTES), now, now))
        return session_id

    def find(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (an expired or outdated one is deleted)."""
        if not session_id or len(session_id) > 128:
            return None
        key = digest(session_id)
        row = self.db.connect().execute(f"SELECT user_id, stamp, csrf, created, seen FROM {TABLE} WHERE digest = ?",
                                        (key,)).fetchone()
        if row is None:
            return None
        user_id, stamp, csrf, created, seen = row
        now = time.time()
        user = next((u for u in self.users() if u.id == user_id), None)
        if (user is None or not getattr(user, "enabled", True) or self.stamp(user) != stamp
                or created <= now - self.settings.ttl or seen <= now - self.settings.idle):
            self.end(session_id)
            return None
        if now - seen >= SEEN_EVERY:
            self.db.connect().execute(f"UPDATE {TABLE} SET seen = ? WHERE digest = ?", (now, key))
        return Session(key, user, csrf)

    def end(self, session_id: str) -> None:
        """Forget the session (logout)."""
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE digest = ?", (digest(session_id),))
