"""provision.conf: Config::Simple `key=value` lines, comma lists, `#` comments.

Every key the engine knows is declared once in KEYS, with its default and the
sentence README.md shows for it; an undeclared key is an error naming it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from configobj import ConfigObj, ConfigObjError, DuplicateError

from provisioner.errors import InputError
from provisioner.spec.text import read_text

CONF_MAX_BYTES = 64 * 1024
"""Cap on provision.conf, checked before parsing."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"[A-Za-z0-9.!#%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]*(?:=[A-Za-z0-9.+~:-]+)?")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_NETNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_BOOL = {"yes": True, "true": True, "on": True, "1": True,
         "no": False, "false": False, "off": False, "0": False}


class _Bad(ValueError):
    """A value that does not fit its key; the loader adds file and key."""


def cut(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message, cut to `limit` characters: never a whole user value."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def _text(raw: Any) -> str:
    if isinstance(raw, list):
        raise _Bad("takes a single value, not a comma-separated list")
    if _CONTROL.search(raw):
        raise _Bad("contains a control character")
    return raw


def _list(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    out = [item.strip() for item in items if item.strip()]
    for item in out:
        if _CONTROL.search(item):
            raise _Bad("contains a control character")
    return out


def _positive_int(raw: Any) -> int:
    text = _text(raw).strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) <= 0:
        raise _Bad(f"must be a positive integer, got {cut(text)}")
    return int(text)


def _bool(raw: Any) -> bool:
    text = _text(raw).strip().lower()
    if text not in _BOOL:
        raise _Bad(f"must be yes or no, got {cut(text)}")
    return _BOOL[text]


def _ipv4(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise _Bad(f"{cut(text)} is not an IPv4 address") from None


def _ips(raw: Any) -> list[tuple[ipaddress.IPv4Address, int]]:
    out = []
    for item in _list(raw):
        ip, _, prefix = item.partition("/")
        if prefix and (not prefix.isdigit() or not 1 <= int(prefix) <= 32):
            raise _Bad(f"{cut(item)} has an invalid prefix length (1-32)")
        out.append((_ipv4(ip), int(prefix) if prefix else 24))
    return out


def _ipv4_list(raw: Any) -> list[ipaddress.IPv4Address]:
    return [_ipv4(item) for item in _list(raw)]


def _one_of(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _text(raw).strip()
        if text not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}, got {cut(text)}")
        return text
    return parse


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _text(raw).strip()
        if not pattern.fullmatch(text):
            raise _Bad(f"{cut(text)} is not a valid {what}")
        return text
    return parse


def _list_matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], list[str]]:
    def parse(raw: Any) -> list[str]:
        items = _list(raw)
        for item in items:
            if not pattern.fullmatch(item):
                raise _Bad(f"{cut(item)} is not a valid {what}")
        return items
    return parse


_DIGEST_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}


def _digests(raw: Any) -> dict[str, str]:
    out = {}
    for item in _list(raw):
        algorithm, _, value = item.partition(":")
        algorithm, value = algorithm.strip().lower(), value.strip().lower()
        if algorithm not in _DIGEST_LENGTHS:
            raise _Bad(f"{cut(item)}: use ALGORITHM:HEX with one of {', '.join(_DIGEST_LENGTHS)}")
        if not re.fullmatch(f"[0-9a-f]{{{_DIGEST_LENGTHS[algorithm]}}}", value):
            raise _Bad(f"{cut(item)}: a {algorithm} digest is {_DIGEST_LENGTHS[algorithm]} hex digits")
        out[algorithm] = value
    return out


def _sizes(raw: Any) -> list[int]:
    return [_positive_int(item) for item in _list(raw)]


def _any_text(raw: Any) -> str:
    return _text(raw).strip()


@dataclass(frozen=True)
class Key:
    """One provision.conf key: how to parse it, its default, its README line."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str


KEYS: tuple[Key, ...] = (
    Key("image", _any_text, None, "Required. Base image: an imported image's name (`provision image import`), "
        "an http(s) URL, or a local file inside the domain directory (relative to it) or inside a directory "
        "of `PROVISION_IMAGE_DIRS`."),
    Key("image_digests", _digests, {},
        "Digests an `image` URL must match when it is imported (`sha256:HEX`, also md5, sha1, sha512; comma list)."),
    Key("image_format", _one_of("auto", "qcow2", "raw"), "auto", "Base image format; `auto` reads a local file's header, and takes qcow2 for URLs."),
    Key("ips", _ips, [], "Static IPv4 addresses (`a.b.c.d[/prefix]`, prefix default 24), all on the first NIC. Empty: DHCP."),
    Key("gateway", lambda raw: _ipv4(_any_text(raw)), None, "IPv4 default gateway. Required when `ips` is set."),
    Key("resolvers", _ipv4_list, [], "DNS resolvers (IPv4); the search domain is the domain's name."),
    Key("size", _positive_int, 10 * 1024**3, "System disk size in bytes (copy-on-write over the base image)."),
    Key("memory", _positive_int, 1024, "Memory in MiB."),
    Key("cpus", _positive_int, 1, "Virtual CPUs."),
    Key("cpu_mode", _one_of("auto", "host-passthrough", "host-model", "maximum", "custom"), "auto",
        "libvirt CPU mode; `auto` is host-passthrough under KVM and maximum under TCG."),
    Key("domain_type", _one_of("auto", "kvm", "qemu"), "auto",
        "libvirt domain type; `auto` probes whether KVM really runs guests, else qemu (TCG)."),
    Key("libvirt_uri", _any_text, "simulator",
        "Hypervisor: a libvirt URI (`qemu:///system`, `qemu+ssh://host/system`, …) or `simulator`, libvirt's test driver persisted under the root. "
        "Not the `ext` transport nor the `command`, `keyfile`, `known_hosts`, `pkipath`, `socket`, `netcat` parameters (`--libvirt-uri` may)."),
    Key("packages", _list_matching(_PACKAGE, "Debian package name"), [], "Extra packages cloud-init installs (plus `at` and `make`, which the post-boot job needs)."),
    Key("install_packages", _bool, True, "`no` when the image already has every package: cloud-init then installs nothing and never runs apt."),
    Key("contact_email", _matching(_EMAIL, "e-mail address"), None, "Where root's mail goes (an /etc/aliases entry)."),
    Key("depends_on", _any_text, None, "A domain this one is layered onto: that domain is provisioned first, then "
        "this one's users, packages, `ips` and data.tar.gz go onto its machine; no VM of its own "
        "(docs/postboot.md, Layering)."),
    Key("admin_user", _matching(_USER, "user name"), "root", "The sudo user the engine logs in as, with its "
        "per-domain key (a layered domain: with the machine owner's key)."),
    Key("bridge", _matching(_IFNAME, "bridge interface name"), "br0", "Host bridge the NIC plugs into."),
    Key("network", _matching(_NETNAME, "libvirt network name"), None, "A libvirt network to plug the NIC into instead of `bridge`."),
    Key("nic_model", _one_of("virtio", "e1000", "e1000e", "rtl8139"), "virtio", "NIC model."),
    Key("disks", _sizes, [], "Extra blank data disks, sizes in bytes (vdb, vdc, …)."),
    Key("autostart", _bool, True, "Start the guest when the hypervisor boots."),
    Key("graphics", _bool, False, "Add a VNC display listening on 127.0.0.1."),
    Key("machine", _any_text, "q35", "Machine type."),
    Key("arch", _any_text, "x86_64", "Guest architecture."),
    Key("kernel", _any_text, None, "Direct kernel boot: kernel file (with `initrd` and `cmdline`), inside the "
        "domain directory or `PROVISION_IMAGE_DIRS`."),
    Key("initrd", _any_text, None, "Direct kernel boot: initrd file (same places as `kernel`)."),
    Key("cmdline", _any_text, None, "Direct kernel boot: kernel command line."),
    Key("ssh_address", _any_text, None,
        "Where the post-boot job reaches the guest's SSH (`HOST[:PORT]`, IPv6 as `[ADDR]:PORT`) when it is "
        "not the first of `ips` or the address libvirt reports (NAT, port forward)."),
    Key("locale", _matching(re.compile(r"[A-Za-z0-9_.@-]+"), "locale"), "C.UTF-8",
        "System locale; C.UTF-8 needs no locales package."),
    Key("backup_keep", _positive_int, 7, "How many site backups `provision backup` keeps under the root "
        "(the oldest beyond that are removed; docs/backups.md)."),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}


def read_conf(path: Path) -> dict[str, Any]:
    """Parse provision.conf into {key: typed value}, defaults filled in."""
    where = str(path)
    text = read_text(path, CONF_MAX_BYTES)
    try:
        parsed = ConfigObj(text.splitlines(), interpolation=False, list_values=True,
                           encoding=None, file_error=False, raise_errors=True)
    except ConfigObjError as exc:
        line = getattr(exc, "line_number", None)
        raise InputError(f"{where}:{line}" if line else where, _parse_error(exc)) from None
    values: dict[str, Any] = {key.name: key.default for key in KEYS}
    for section in parsed.sections:
        raise InputError(where, f"[{section}] sections are not supported: use plain key=value lines")
    for name, raw in parsed.items():
        key = KEYS_BY_NAME.get(name)
        if key is None:
            raise InputError(where, f"unknown key {cut(name)} (known keys: {', '.join(sorted(KEYS_BY_NAME))})")
        try:
            values[name] = key.parse(raw)
        except _Bad as exc:
            raise InputError(where, f"key {name!r}: {exc}") from None
    if values["image"] in (None, ""):
        raise InputError(where, "missing required key 'image'")
    if values["ips"] and values["gateway"] is None:
        raise InputError(where, "key 'gateway' is required when 'ips' is set")
    if values["network"] and "bridge" in parsed:
        raise InputError(where, "keys 'bridge' and 'network' exclude each other: set one")
    return values


_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parse_error(exc: ConfigObjError) -> str:
    """configobj's message without the offending line (it may be a secret): what is wrong, and the key if any.

    The caller names the line number.
    """
    key = str(getattr(exc, "line", "") or "").split("=", 1)[0].strip()
    named = f"key {cut(key)}: " if _KEY_NAME.fullmatch(key) else ""
    if isinstance(exc, DuplicateError):
        return f"Duplicate {named or 'key: '}each key may appear only once"
    if str(exc).startswith("Invalid line"):
        return "not a `key = value` line (nor a comment)"
    return f"{named}the value cannot be parsed (an unbalanced quote?)"
