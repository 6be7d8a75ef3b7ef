"""A tenant's user data (Nova `user_data`), read once at the door and kept as what the seed merges.

Accepted formats, as cloud-init reads them (optionally gzip-compressed):

- `#cloud-config`: parsed with the bounded YAML loader, validated against
  cloud-init's own JSON schema, then merged into the engine's cloud-config at
  render time (provisioner.render.cloudinit): the tenant's list entries of
  `runcmd`, `bootcmd`, `write_files`, `packages` … come after the engine's,
  other keys replace the engine's value, and keys the engine owns
  (OWNED_KEYS: hostname, host keys, root login, module lists …) are refused.
- `#!` (a script): kept as is, and the seed's user-data becomes a MIME
  multipart of the engine's cloud-config and the script (cloud-init runs it
  once, after runcmd).
- Plain text whose first non-blank character is not `#` (Nova passes any
  user data on): a `text/plain` part of that multipart, which cloud-init
  keeps in the guest and acts on in no way (it finds a part's format by its
  first non-blank characters, all of which start with `#`).

Anything else (MIME multipart, `#include`, `#cloud-config-archive`,
`#cloud-boothook`, `#part-handler`, jinja templates …) is refused with the
list of what is accepted: those can fetch or produce cloud-config the engine
cannot validate or keep off its keys.

Without cloud-init's schema on this host (cloud-init not installed) a
`#cloud-config` may only carry the keys the engine validates itself
(SELF_CHECKED_KEYS); others are refused, naming the missing schema.
"""

from __future__ import annotations

import functools
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import safeyaml
from provisioner.errors import InputError
from provisioner.excerpt import LIMIT, describe
from provisioner.spec.model import UserPart
from provisioner.spec.passwords import hash_password
from provisioner.spec.users import check_user, keys_named

# Debian's cloud-init package (22.4 in bookworm); PROVISION_CLOUD_CONFIG_SCHEMA names another file.
DEFAULT_SCHEMA = Path("/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json")
SCHEMA_ENV = "PROVISION_CLOUD_CONFIG_SCHEMA"
MAX_EXPANDED = 512 * 1024  # gzip'd user data, once expanded (the seed holds it; Nova caps the base64 at 64 KiB)
MAX_SCHEMA_ERRORS = 3  # complaints shown in a 400, in path order
MAX_COMPLAINT = 120  # characters of each
_CLOUD_CONFIG = re.compile(r"#cloud-config(?:\s|$)")
# What the engine sets so that it can log in with its key and pin the guest's host key, and the
# modules that do it: a tenant value would break the post-boot job (or is meaningless once merged).
OWNED_KEYS = ("hostname", "fqdn", "prefer_fqdn_over_hostname", "preserve_hostname", "ssh_keys", "ssh_deletekeys",
              "ssh_genkeytypes", "disable_root", "disable_root_opts", "allow_public_ssh_keys", "final_message",
              "cloud_init_modules", "cloud_config_modules", "cloud_final_modules", "system_info",
              "merge_how", "merge_type")
# Keys checked by the engine's own rules when cloud-init's schema is not installed.
SELF_CHECKED_KEYS = ("users", "packages", "ssh_authorized_keys")
_HASH = re.compile(r"\$(1|2a|2y|5|6)(\$.+){2}")  # cloud-init's own test for a hashed chpasswd password
_RANDOM = ("R", "RANDOM")
_QUOTED = re.compile(r"""(['"])([^'"]{%d,})\1""" % (LIMIT + 1))


@dataclass(frozen=True)
class TenantUserData:
    """User data split into what the DomainSpec carries.

    `users` are checked entries (plain_text_passwd still in them: the caller
    hashes them with the rest), `packages` the plain package names, `admin_keys`
    the top-level `ssh_authorized_keys` (they go to the admin user), `cloud_config`
    every other key (chpasswd passwords already hashed), `parts` the non
    cloud-config user data.
    """

    users: list[dict[str, Any] | str]
    packages: list[str]
    admin_keys: list[str]
    cloud_config: dict[str, Any] | None
    parts: tuple[UserPart, ...]


def read_user_data(data: bytes, where: str, admin_user: str) -> TenantUserData:
    """Validate decoded user data (`where` names it in errors); InputError on anything refused."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, where)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InputError(where, "is not UTF-8 text (nor gzip of it)") from None
    if text.startswith("#!"):
        return TenantUserData([], [], [], None, (UserPart("text/x-shellscript", text),))
    if not text.lstrip().startswith("#"):  # cloud-init's own test (lstrip, then the `#` headers)
        return TenantUserData([], [], [], None, (UserPart("text/plain", text),))
    # Not `#cloud-config-archive` (cloud-init matches the longest header): a list of parts, refused below.
    if not _CLOUD_CONFIG.match(text):
        raise InputError(where, "is not #cloud-config, a #! script or plain text not starting with # (nor gzip of "
                                "one): #include, #cloud-config-archive, #cloud-boothook, #part-handler and jinja "
                                "user data are not accepted")
    return _cloud_config(text, where, admin_user)


def _gunzip(data: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_EXPANDED + 1)
    except zlib.error:
        raise InputError(where, "is not valid gzip data") from None
    if len(out) > MAX_EXPANDED or inflater.unconsumed_tail:
        raise InputError(where, f"expands to more than {MAX_EXPANDED} bytes")
    if not inflater.eof:
        raise InputError(where, "is truncated gzip data")
    return out


def _cloud_config(text: str, where: str, admin_user: str) -> TenantUserData:
    try:
        doc = safeyaml.load(text) or {}  # no aliases: a few hundred bytes of them expand to gigabytes
    except safeyaml.YamlError as exc:
        raise InputError(where, str(exc)) from None
    if not isinstance(doc, dict):
        raise InputError(where, "the #cloud-config must be a mapping")
    plain = _plain(doc, [], where)  # what the schema and spec.json can hold, keys sorted
    owned = [k for k in doc if k in OWNED_KEYS]
    if owned:
        raise InputError(where, f"cloud-config key(s) {keys_named(owned)} are set by the engine (it logs in with "
                                "its own key and pins the host key it generated): leave them out")
    entries = doc.get("users") or []
    if not isinstance(entries, list):
        raise InputError(where, "cloud-config 'users' must be a list")
    users = [check_user(where, i, u) for i, u in enumerate(entries)]
    validator = schema_validator()
    if validator is None:
        unchecked = [k for k in doc if k not in SELF_CHECKED_KEYS]
        if unchecked:
            raise InputError(where, f"cloud-config key(s) {keys_named(unchecked)} cannot be validated here: "
                                    f"cloud-init's schema is not installed on this host (install cloud-init; "
                                    f"accepted without it: {', '.join(SELF_CHECKED_KEYS)})")
    else:
        _check_schema(validator, plain, where)
    packages = doc.get("packages") or []
    keys = doc.get("ssh_authorized_keys") or []
    if validator is None:  # else the schema has checked them
        for name, value in (("packages", packages), ("ssh_authorized_keys", keys)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(where, f"cloud-config {name!r} must be a list of strings")
    extra = {k: v for k, v in plain.items() if k not in SELF_CHECKED_KEYS}
    if all(isinstance(p, str) for p in packages):
        names = packages
    else:  # [name, version] pins: the list stays whole, after the engine's
        names, extra["packages"] = [], packages
    if "chpasswd" in extra:
        extra["chpasswd"] = _hashed_chpasswd(extra["chpasswd"], where, admin_user)
    return TenantUserData(users, names, keys, extra or None, ())


def _plain(value: Any, path: list[Any], where: str) -> Any:
    """`value` with every mapping's keys sorted, as spec.json stores it (so a re-render gives the same
    bytes); a value JSON cannot hold (a YAML date, a non-string key) refused by its path."""
    if isinstance(value, dict):
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise InputError(where, f"cloud-config {_path(path)}: key {describe(bad)} is not a string: quote it")
        return {k: _plain(value[k], [*path, k], where) for k in sorted(value)}
    if isinstance(value, list):
        return [_plain(v, [*path, i], where) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise InputError(where, f"cloud-config {_path(path)}: {describe(value)} is not a plain YAML value "
                            "(a date? quote it)")


@functools.lru_cache(maxsize=4)
def _validator_for(path: Path) -> Any:
    import jsonschema_rs  # a Rust extension: imported only where user data is read

    try:
        schema = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return jsonschema_rs.Draft4Validator(schema)


def schema_validator() -> Any:
    """cloud-init's cloud-config schema compiled (cached per path), or None when the file is absent."""
    return _validator_for(Path(os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA))


def _check_schema(validator: Any, doc: dict[str, Any], where: str) -> None:
    errors = sorted(validator.iter_errors(doc),
                    key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.instance_path])
    if not errors:
        return
    shown = "; ".join(f"{_path(e.instance_path)}: {_complaint(e)}" for e in errors[:MAX_SCHEMA_ERRORS])
    more = f" (and {len(errors) - MAX_SCHEMA_ERRORS} more)" if len(errors) > MAX_SCHEMA_ERRORS else ""
    raise InputError(where, f"cloud-config refused by cloud-init's schema: {shown}{more}")


def _path(parts: list[Any]) -> str:
    """`write_files[0].path`; a key that is not a plain name is shown cut."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part) if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(part)) else describe(str(part))
            out += f".{name}" if out else name
    return out or "(top level)"


def _complaint(error: Any) -> str:
    """The schema's message without the offending value it starts with (shown by type or cut instead)."""
    message = str(error.message)
    shown = json.dumps(error.instance, separators=(",", ":"), ensure_ascii=False)
    if message.startswith(shown):
        message = f"{describe(error.instance)}{message[len(shown):]}"
    # A key or value quoted in the message (an unexpected property's name) is cut like any user text.
    message = _QUOTED.sub(lambda m: f"{m[1]}{m[2][:LIMIT]}…{m[1]}", message)
    return message if len(message) <= MAX_COMPLAINT else message[:MAX_COMPLAINT] + "…"


def _hashed_chpasswd(chpasswd: dict[str, Any], where: str, admin_user: str) -> dict[str, Any]:
    """chpasswd with plain passwords replaced by SHA-512 crypt hashes; the admin user refused.

    cloud-init expires the passwords it sets (expire defaults to true): an
    expired admin password makes the engine's non-interactive SSH login fail.
    """
    out = dict(chpasswd)
    if "users" in out:
        users = []
        for index, entry in enumerate(out["users"]):
            if entry.get("name") == admin_user:
                raise InputError(where, f"chpasswd.users[{index}]: the admin user {admin_user!r} is the engine's "
                                        "login: set its password in 'users' (hashed_passwd) instead")
            if entry.get("type") == "text":
                entry = {**entry, "password": hash_password(entry["password"]), "type": "hash"}
            users.append(entry)
        out["users"] = users
    if "list" in out:
        lines = out["list"].splitlines() if isinstance(out["list"], str) else out["list"]
        hashed = []
        for index, line in enumerate(lines):
            name, _, password = line.partition(":")
            if name == admin_user:
                raise InputError(where, f"chpasswd.list[{index}]: the admin user {admin_user!r} is the engine's "
                                        "login: set its password in 'users' (hashed_passwd) instead")
            if password not in _RANDOM and not _HASH.match(password):
                password = hash_password(password)
            hashed.append(f"{name}:{password}")
        out["list"] = hashed
    return out
