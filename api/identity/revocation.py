"""Tokens revoked before they expire (`DELETE /identity/v3/auth/tokens`), in state.db for every worker process.

A token is recorded by the digest of its text, with its expiry: a row is
pruned once its token would be refused as expired anyway. Each revocation
bumps the shared credentials counter (api/change_counter.py), so the token
checks of every process, which cache "not revoked" per token, look again.
"""

from __future__ import annotations

import hashlib
import time

from api.change_counter import ChangeCounters, Slot
from api.db import Database

TABLE = "api_revoked_tokens"


def token_digest(text: str) -> str:
    """What the table keys a token by (never the token itself: it is a bearer secret)."""
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()


class RevokedTokens:
    """The revocation table."""

    def __init__(self, db: Database, counters: ChangeCounters):
        self.db = db
        self.counters = counters
        db.create(f"CREATE TABLE IF NOT EXISTS {TABLE} (digest TEXT PRIMARY KEY, expires_at REAL NOT NULL)")

    def add(self, digest: str, expires_at: float) -> None:
        """Revoke the token with this digest until `expires_at`; forget tokens that have expired."""
        conn = self.db.connect()
        conn.execute(f"DELETE FROM {TABLE} WHERE expires_at <= ?", (time.time(),))
        conn.execute(f"INSERT INTO {TABLE} (digest, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (digest, expires_at))
        self.counters.bump(Slot.CREDENTIALS)  # after the commit (autocommit): readers that see it see the row

    def __contains__(self, digest: str) -> bool:
        return self.db.connect().execute(f"SELECT 1 FROM {TABLE} WHERE digest = ?", (digest,)).fetchone() is not None
