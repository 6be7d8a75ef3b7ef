"""Cloud-init user passwords: a `plain_text_passwd` never goes past the door.

Both doors (users.yaml, a Nova server's user_data) replace each user's
`plain_text_passwd` by `hashed_passwd`, a SHA-512 crypt hash (`$6$...`) that
cloud-init hands to chpasswd -e, once the entry is validated: state.db,
spec.json, the cloud-init documents and the seed hold the hash, never the
password.

SHA-512 crypt is implemented here (Ulrich Drepper's "Unix crypt using SHA-256
and SHA-512", the algorithm of glibc's crypt and `openssl passwd -6`) rather
than taken from the `crypt` module (deprecated, removed in Python 3.13) or an
`openssl` process (not installed everywhere, and the password would cross a
pipe): it is hashlib only, and the tests check it against `openssl passwd -6`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PLAIN = "plain_text_passwd"
HASHED = "hashed_passwd"
PREFIX = "$6$"
ROUNDS = 5000  # the scheme's default: the hash then carries no rounds= field, as openssl's does
SALT_LENGTH = 16  # the scheme's maximum
_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sha512_crypt(password: str, salt: str) -> str:
    """The `$6$<salt>$<hash>` of `password` (UTF-8) with `salt` (at most 16 of ./0-9A-Za-z, default rounds)."""
    if not salt or len(salt) > SALT_LENGTH or any(c not in _ALPHABET for c in salt):
        raise ValueError(f"a SHA-512 crypt salt is 1 to {SALT_LENGTH} characters of {_ALPHABET}")
    key, seasoning = password.encode(), salt.encode()
    alternate = hashlib.sha512(key + seasoning + key).digest()
    digest = hashlib.sha512(key + seasoning)
    remaining = len(key)
    while remaining > 64:
        digest.update(alternate)
        remaining -= 64
    digest.update(alternate[:remaining])
    bits = len(key)
    while bits:
        digest.update(alternate if bits & 1 else key)
        bits >>= 1
    result = digest.digest()
    key_bytes = _stretch(hashlib.sha512(key * len(key)).digest(), len(key))
    salt_bytes = _stretch(hashlib.sha512(seasoning * (16 + result[0])).digest(), len(seasoning))
    for round_ in range(ROUNDS):
        step = hashlib.sha512(key_bytes if round_ & 1 else result)
        if round_ % 3:
            step.update(salt_bytes)
        if round_ % 7:
            step.update(key_bytes)
        step.update(result if round_ & 1 else key_bytes)
        result = step.digest()
    return f"{PREFIX}{salt}${_encode(result)}"


def _stretch(digest: bytes, length: int) -> bytes:
    return (digest * (length // len(digest) + 1))[:length]


def _encode(result: bytes) -> str:
    """The scheme's own base64: 21 groups of 3 bytes in its fixed order, then the last byte."""
    out = []
    for i in range(21):
        a, b, c = i, i + 21, i + 42
        group = ((a, b, c), (b, c, a), (c, a, b))[i % 3]
        out.append(_b64(result[group[0]] << 16 | result[group[1]] << 8 | result[group[2]], 4))
    out.append(_b64(result[63], 2))
    return "".join(out)


def _b64(value: int, count: int) -> str:
    chars = []
    for _ in range(count):
        chars.append(_ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(chars)


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash of `password` with a fresh random salt."""
    return sha512_crypt(password, "".join(secrets.choice(_ALPHABET) for _ in range(SALT_LENGTH)))


def verifies(password: str, hashed: str) -> bool:
    """True if `hashed` is a SHA-512 crypt hash (default rounds) of `password`."""
    if not hashed.startswith(PREFIX):
        return False
    salt = hashed[len(PREFIX):].split("$", 1)[0]
    try:
        return hmac.compare_digest(sha512_crypt(password, salt), hashed)
    except ValueError:
        return False


def hash_plain_passwords(users: Sequence[dict[str, Any] | str],
                         previous: Mapping[str, str] | None = None) -> tuple[dict[str, Any] | str, ...]:
    """`users` (validated entries) with each `plain_text_passwd` replaced, in place, by `hashed_passwd`.

    `previous` maps a user name to the hash a former render gave it: kept while
    it still verifies, so rendering unchanged inputs again gives the same bytes
    (a new salt would change the seed and its volume). An entry that already has
    `hashed_passwd` just loses its `plain_text_passwd`: cloud-init applies the
    hash last, so it is what the guest gets either way. An empty one is dropped:
    cloud-init ignores it (hashing it would set an empty password).
    """
    previous = previous or {}
    out: list[dict[str, Any] | str] = []
    for entry in users:
        if not isinstance(entry, dict) or PLAIN not in entry:
            out.append(entry)
            continue
        replaced = {key: value for key, value in entry.items() if key != PLAIN}
        password = entry[PLAIN]
        if password and not entry.get(HASHED):
            kept = previous.get(entry["name"])
            hashed = kept if kept and verifies(password, kept) else hash_password(password)
            # Where the password was, so the rendered user-data reads in the same order.
            replaced = {(HASHED if key == PLAIN else key): (hashed if key == PLAIN else value)
                        for key, value in entry.items() if key != HASHED}
        out.append(replaced)
    return tuple(out)


def previous_hashes(spec_json: Path) -> dict[str, str]:
    """User name -> `hashed_passwd` in a former render's spec.json ({} when there is none, or it is unreadable)."""
    try:
        users = json.loads(spec_json.read_text()).get("users") or []
    except (OSError, ValueError, AttributeError):
        return {}
    return {u["name"]: u[HASHED] for u in users
            if isinstance(u, dict) and isinstance(u.get("name"), str) and isinstance(u.get(HASHED), str)}
