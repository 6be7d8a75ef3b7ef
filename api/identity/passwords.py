"""Password hashes for the configuration file: scrypt with a per-user random salt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2 ** 14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
# Verified instead of a user's hash when the user does not exist, so an unknown name costs the
# same scrypt as a wrong password: timing does not tell which names exist. Its key is random
# bytes, not derived from any password, so nothing verifies against it.
DUMMY_HASH = f"{SCHEME}${N}${R}${P}$7ULUVZVujqYddj2wK98cGA==$YKWYN9/GQQw5CEKn6drJaOkNzHIT0EL+2PCroK4q2kU="


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$key` for `password`, with a fresh salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches `encoded`; a malformed hash never matches."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(key, expected)
