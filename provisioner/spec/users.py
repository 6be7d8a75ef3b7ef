"""users.yaml: a cloud-init `users:` list, checked before it reaches a guest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from provisioner.errors import InputError
from provisioner.spec.text import read_text

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# cloud-init's users-groups schema (22.4+); anything else is a typo that the
# guest would silently ignore, so it is refused here.
USER_KEYS = frozenset({
    "name", "gecos", "homedir", "primary_group", "groups", "selinux_user",
    "lock_passwd", "inactive", "passwd", "hashed_passwd", "plain_text_passwd",
    "create_groups", "expiredate", "ssh_authorized_keys", "ssh_import_id",
    "ssh_redirect_user", "system", "snapuser", "sudo", "doas", "uid",
    "no_create_home", "no_user_group", "no_log_init", "shell",
})


def read_users(path: Path) -> tuple[dict[str, Any] | str, ...]:
    """Parse users.yaml into a tuple of cloud-init user entries (dicts)."""
    where = str(path)
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{where}{line}", f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(where, f"malformed YAML: {exc}") from None
    if not isinstance(data, dict) or "users" not in data:
        raise InputError(where, "must be a mapping with a 'users:' list")
    extra = sorted(str(k) for k in data if k != "users")
    if extra:
        raise InputError(where, f"unknown top-level key(s) {', '.join(extra)}: only 'users:' is read")
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
    if not isinstance(name, str) or not _USER.match(name):
        raise InputError(at, f"'name' {name!r} is not a valid user name ([a-z_][a-z0-9_-]*, at most 32)")
    unknown = sorted(str(k) for k in entry if k not in USER_KEYS)
    if unknown:
        raise InputError(f"{at} ({name})", f"unknown key(s) {', '.join(unknown)}")
    keys = entry.get("ssh_authorized_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError(f"{at} ({name})", "'ssh_authorized_keys' must be a list of strings")
    return dict(entry)
