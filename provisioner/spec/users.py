"""users.yaml: a cloud-init `users:` list, checked before it reaches a guest."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner import safeyaml
from provisioner.errors import InputError
from provisioner.excerpt import describe
from provisioner.spec.text import read_text

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_UID = re.compile(r"[0-9]{1,10}")
MAX_UID = 2**32 - 2  # (uid_t)-1 means "no change" to chown and setuid


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _uid(value: Any) -> bool:
    if isinstance(value, str) and _UID.fullmatch(value):  # str.isdigit() takes '١٢' too
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UID


# cloud-init's users-groups schema (22.4+): each key and the types it takes. Any other key is a typo the
# guest would silently ignore, and a value of another type fails on the guest after boot (or is ignored),
# so both are refused here.
USER_KEYS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "name": ("a string", _string),
    "gecos": ("a string", _string),
    "homedir": ("a string", _string),
    "primary_group": ("a string", _string),
    "groups": ("a string or a list of strings", lambda v: _string(v) or _strings(v)),
    "selinux_user": ("a string", _string),
    "lock_passwd": ("true or false", _boolean),
    "inactive": ("a string (days)", _string),
    "passwd": ("a string", _string),
    "hashed_passwd": ("a string", _string),
    "plain_text_passwd": ("a string", _string),
    "create_groups": ("true or false", _boolean),
    "expiredate": ("a string (YYYY-MM-DD)", _string),
    "ssh_authorized_keys": ("a list of strings", _strings),
    "ssh_import_id": ("a list of strings", _strings),
    "ssh_redirect_user": ("true or false", _boolean),
    "system": ("true or false", _boolean),
    "snapuser": ("a string", _string),
    "sudo": ("a string, a list of strings, null or false",
             lambda v: v is None or v is False or _string(v) or _strings(v)),
    "doas": ("a list of strings", _strings),
    "uid": (f"a non-negative integer (at most {MAX_UID})", _uid),
    "no_create_home": ("true or false", _boolean),
    "no_user_group": ("true or false", _boolean),
    "no_log_init": ("true or false", _boolean),
    "shell": ("a string", _string),
}


def read_users(path: Path) -> tuple[dict[str, Any] | str, ...]:
    """Parse users.yaml into a tuple of cloud-init user entries (dicts)."""
    where = str(path)
    text = read_text(path)
    try:
        data = safeyaml.load(text)
    except safeyaml.YamlError as exc:
        raise InputError(exc.located(where), exc.problem) from None
    if not isinstance(data, dict) or "users" not in data:
        raise InputError(where, "must be a mapping with a 'users:' list")
    extra = [k for k in data if k != "users"]
    if extra:
        raise InputError(where, f"unknown top-level key(s) {keys_named(extra)}: only 'users:' is read")
    users = data["users"]
    if not isinstance(users, list):
        raise InputError(where, "'users:' must be a list")
    return tuple(check_user(where, index, entry) for index, entry in enumerate(users))


def check_user(where: str, index: int, entry: Any) -> dict[str, Any] | str:
    """Validate one cloud-init user entry (`where` and `index` name it in errors)."""
    at = f"{where}: users[{index}]"
    if entry == "default":
        return entry  # cloud-init's distro default user, kept literally
    if not isinstance(entry, dict):
        raise InputError(at, "must be a mapping with at least 'name', or the string 'default'")
    name = entry.get("name")
    if not isinstance(name, str) or not _USER.fullmatch(name):
        raise InputError(at, f"'name' {describe(name)} is not a valid user name "
                             "([a-z_][a-z0-9_-]*, at most 32)")
    unknown = [k for k in entry if k not in USER_KEYS]
    if unknown:
        raise InputError(f"{at} ({name})", f"unknown key(s) {keys_named(unknown)}")
    for key, value in entry.items():
        expected, accepts = USER_KEYS[key]
        if not accepts(value):
            raise InputError(f"{at} ({name})", f"'{key}' must be {expected}, not {describe(value)}")
    return dict(entry)


def keys_named(keys: list[Any], shown: int = 5) -> str:
    """The first few of `keys` for a message, each cut short (a key is user input too)."""
    named = ", ".join(describe(key) for key in keys[:shown])
    return named + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
