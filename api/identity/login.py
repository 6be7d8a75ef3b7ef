"""Password authentication: one scrypt at a time per process, the same work for an unknown user, under the throttle."""

from __future__ import annotations

import threading

from api.config import User
from api.identity.passwords import DUMMY_HASH, verify_password
from api.identity.throttle import FailureThrottle, address_key, user_key


class PasswordCheck:
    """Checks a password for a user found by name or id (or not found), from a client address."""

    def __init__(self, throttle: FailureThrottle):
        self.throttle = throttle
        # scrypt (16 MiB per hash) is memory-bound: hashes run side by side in one process thrash
        # the caches and finish later in total than one after another; the server's worker
        # processes (one per CPU) are what run hashes in parallel.
        self._slot = threading.Semaphore(1)

    def check(self, user: User | None, given: str, password: str, address: str) -> User | None:
        """`user` if it exists and `password` is its password, else None; Throttled (429) while locked.

        `given` is the name or id the client sent: an unknown user's failures count under it,
        and it costs the same scrypt (against DUMMY_HASH) as a known user's wrong password.
        """
        encoded = user.password_hash if user is not None else None
        matches = self.secret_matches(user.id if user is not None else given, encoded, password, address)
        return user if matches else None

    def secret_matches(self, subject: str, encoded: str | None, secret: str, address: str) -> bool:
        """Whether `secret` matches the scrypt hash `encoded` (None: nothing matches, at the same cost), counted
        under the throttle's keys for `subject` (a user id or name) and `address`; Throttled (429) while locked."""
        user_at = user_key(subject)
        address_at = address_key(address)
        # The lock check waits for the slot, so a burst queued behind it sees the failures recorded
        # meanwhile; recording one (a write, milliseconds) happens after the slot is released, so
        # the next password check does not wait for it: at most one more guess per process slips
        # through as a key locks.
        with self._slot:
            had_failures = self.throttle.check(user_at, address_at)
            matches = verify_password(secret, encoded if encoded is not None else DUMMY_HASH)
        if not matches or encoded is None:
            self.throttle.failed(user_at, address_at)
            return False
        if had_failures:
            self.throttle.succeeded(user_at)
        return True
