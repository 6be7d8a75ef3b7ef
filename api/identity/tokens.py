"""Tokens: HMAC-SHA256-signed, self-contained and expiring, so checking one needs no database.

The signing key is `<root>/api/token.key` (created once, 0600), so every
worker process of one server accepts every other's tokens. A token carries
its user's credential stamp (a keyed digest of the user's password hash and
enabled flag when it was issued): api/identity/verifier.py refuses it once
they change, once its user loses a role it carries, and once it is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from api.config import User
from api.errors import Unauthorized
from provisioner.errors import InputError

KEY_BYTES = 32


@dataclass(frozen=True)
class Token:
    """What a token says: who, in which project, with which roles, until when (epoch seconds)."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    stamp: str = ""  # TokenSigner.stamp of its user at issue
    audit_id: str = ""  # random: every token is distinct, and Keystone bodies list it in audit_ids
    app_cred_id: str = ""  # the application credential it was issued for, if any

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def load_key(path: Path) -> bytes:
    """The signing key, created on first use. It is written whole to a private temporary file and then linked
    into place, so a worker process starting at the same moment reads either no key or the whole key, never
    the empty file an O_EXCL create shows before its write (an empty HMAC key would sign every token)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(secrets.token_bytes(KEY_BYTES))
                stream.flush()
                os.fsync(stream.fileno())
            os.link(staged, path)
        except FileExistsError:
            pass  # another process published its key first: that one is the key
        finally:
            staged.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise InputError(str(path), f"the token signing key is {len(key)} bytes, not {KEY_BYTES}: the file is "
                                    "damaged; remove it to make a new key (every token issued so far ends)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies tokens with one key."""

    def __init__(self, key: bytes, ttl: int):
        self.key = key
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    def stamp(self, user: User) -> str:
        """A keyed digest of `user`'s id, password hash and enabled flag: it changes whenever any of them does.
        (Roles are checked apart: a token stays good while its user keeps every role it carries.)"""
        return self._sign(json.dumps([user.id, user.password_hash, user.enabled]))[:22]

    def issue(self, user_id: str, user_name: str, project_id: str, project_name: str,
              roles: tuple[str, ...], stamp: str = "", app_cred_id: str = "",
              expires_at: float | None = None) -> tuple[str, Token]:
        """A new token string and what it says; `stamp` is the user's, from `stamp()`; it expires after the
        signer's ttl, or at `expires_at` if that is sooner (an application credential's expiry)."""
        now = time.time()
        expiry = now + self.ttl if expires_at is None else min(now + self.ttl, expires_at)
        token = Token(user_id, user_name, project_id, project_name, tuple(roles), now, expiry,
                      stamp, _b64(secrets.token_bytes(16)), app_cred_id)
        # vars(), not asdict(): the fields are flat values, asdict's recursive copy is wasted work per issue.
        payload = _b64(json.dumps(vars(token), separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", token

    def verify(self, text: str | None) -> Token:
        """The token's claims; Unauthorized if missing, forged or expired."""
        if not text:
            raise Unauthorized("the request needs an X-Auth-Token header")
        payload, _, signature = text.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("the token is not valid")
        try:
            data = json.loads(_unb64(payload))
            token = Token(**{**data, "roles": tuple(data["roles"])})
        except (ValueError, TypeError, KeyError):
            raise Unauthorized("the token is not valid") from None
        if token.expires_at <= time.time():
            raise Unauthorized("the token has expired")
        return token
