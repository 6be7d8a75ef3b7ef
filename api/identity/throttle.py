"""Failed password authentications, counted per user and per client address in state.db.

Every worker process of a server shares the counts. A key that reaches its
limit within the window is locked for the lockout duration: its logins are
refused with 429 and Retry-After before any password is checked, so the
right password does not get through either. A success forgets the user's
count (never the address's: one's own account must not reset the count of
guesses at others').

Each recorded failure bumps the shared auth-failures counter
(api/change_counter.py). A process remembers which keys had no row when it
last looked, until that counter moves: logins without failures anywhere
cost no database access.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from api.change_counter import ChangeCounters, Slot
from api.config import ApiConfig
from api.db import Database
from api.errors import ApiError

TABLE = "api_auth_failures"
CLEAN_KEYS = 4096  # keys remembered per process as having no failures (forgotten all at once when full)


class Throttled(ApiError):
    """Too many failed authentications: 429, with the seconds until the lock ends."""

    status, kind, title = 429, "overLimit", "Too Many Requests"

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed authentications for this user or from this address: "
                         f"retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """Failures allowed per user and per address (0: no limit) within `window` seconds; lock length."""

    per_user: int
    per_address: int
    window: float
    lockout: float

    @classmethod
    def of(cls, config: ApiConfig) -> Limits:
        """The limits the configuration file sets."""
        return cls(config.auth_failures_per_user, config.auth_failures_per_address,
                   config.auth_failure_window, config.auth_lockout)


def user_key(identity: str) -> str:
    """The key counting failures for a user id or name (a digest: names can be long)."""
    return "user:" + hashlib.sha256(identity.encode(errors="surrogatepass")).hexdigest()[:32]


def address_key(address: str) -> str:
    """The key counting failures from a client address."""
    return "address:" + address[:64]


class FailureThrottle:
    """Counts failures per key and refuses locked keys."""

    def __init__(self, db: Database, limits: Limits, counters: ChangeCounters):
        self.db = db
        self.limits = limits
        self.counters = counters
        # Keys without a row, as of the counter's value: only a failure adds a row, and every one bumps it.
        self._clean: tuple[int, set[str]] = (counters.value(Slot.AUTH_FAILURES), set())
        db.create(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, "
                  "window_start REAL NOT NULL, failures INTEGER NOT NULL, locked_until REAL NOT NULL)")

    def _limit(self, key: str) -> int:
        return self.limits.per_user if key.startswith("user:") else self.limits.per_address

    def check(self, user: str, address: str) -> bool:
        """Throttled if either key is locked now; else whether the user has failures on record."""
        changes = self.counters.value(Slot.AUTH_FAILURES)  # before the SELECT: a later failure is seen next time
        seen, clean = self._clean
        if seen != changes:
            clean = set()
            self._clean = (changes, clean)
        if user in clean and address in clean and not self.db.shared:
            return False
        now = time.time()
        rows = self.db.connect().execute(f"SELECT key, locked_until FROM {TABLE} WHERE key IN (?, ?)",
                                         (user, address)).fetchall()
        if len(clean) >= CLEAN_KEYS:
            clean.clear()
        clean.update({user, address} - {key for key, _ in rows})
        locked_until = max((until for _, until in rows), default=0.0)
        if locked_until > now:
            raise Throttled(max(1, math.ceil(locked_until - now)))
        return any(key == user for key, _ in rows)

    def failed(self, user: str, address: str) -> None:
        """Count one failure for both keys, locking a key that reaches its limit; prune stale rows."""
        now = time.time()
        window, lockout = self.limits.window, self.limits.lockout
        with self.db.transaction() as conn:
            for key in (user, address):
                limit = self._limit(key)
                if not limit:
                    continue
                # A window that has passed starts again at this failure; the count is kept through a
                # lock, so after it ends, one more failure in the same window locks again. The stored row's
                # columns are named with the table's name: PostgreSQL finds a bare name ambiguous (or `excluded`).
                conn.execute(
                    f"INSERT INTO {TABLE} (key, window_start, failures, locked_until) VALUES (:key, :now, 1, 0) "
                    "ON CONFLICT(key) DO UPDATE SET "
                    f"failures = CASE WHEN {TABLE}.window_start <= :stale THEN 1 ELSE {TABLE}.failures + 1 END, "
                    f"window_start = CASE WHEN {TABLE}.window_start <= :stale THEN :now ELSE {TABLE}.window_start END",
                    {"key": key, "now": now, "stale": now - window})
                conn.execute(f"UPDATE {TABLE} SET locked_until = ? WHERE key = ? AND failures >= ?",
                             (now + lockout, key, limit))
            conn.execute(f"DELETE FROM {TABLE} WHERE window_start <= ? AND locked_until <= ?", (now - window, now))
        self.counters.bump(Slot.AUTH_FAILURES)

    def succeeded(self, user: str) -> None:
        """Forget the user's failures."""
        self.db.connect().execute(f"DELETE FROM {TABLE} WHERE key = ?", (user,))
