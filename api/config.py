"""The API's configuration file (`<root>/api/config.yaml`): users, projects, flavors, networks, limits.

Users carry a password hash (api.identity.passwords), never a password.
Ids not written in the file derive from names (UUID5), so they are stable
across restarts and across worker processes.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from provisioner import safeyaml
from api.change_counter import ChangeCounters, Slot
from api.config_hypervisors import HOSTNAME, HypervisorConfig, parse_hypervisors
from api.db import check_uri
from api.quota.models import QuotaDefaults, parse_defaults
from provisioner.errors import InputError
from provisioner.layout import Layout
from provisioner.networks import FORWARD_MODES

LISTEN_HOST = "127.0.0.1"  # the API never listens elsewhere
NAMESPACE = uuid.UUID("6f1c1c3e-35a3-4d8e-9d2b-7c1f0c6a0a11")
DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
MAX_CONFIG_CHARS = 16 << 20  # a password hash is ~100 bytes: room for many thousand users

# The HTTP transport's limits (api/transport.py).
TRANSPORT_KEYS = {"header_timeout", "body_timeout", "body_min_rate", "idle_timeout", "max_connections",
                  "max_connections_per_client"}

DEFAULT_FLAVORS = (
    {"id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1},
    {"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
    {"id": "3", "name": "m1.medium", "ram": 4096, "vcpus": 2, "disk": 40},
    {"id": "4", "name": "m1.large", "ram": 8192, "vcpus": 4, "disk": 80},
)


def stable_id(kind: str, name: str) -> str:
    """A UUID (hex, Keystone style) derived from a kind and a name."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{name}").hex


def config_path(layout: Layout) -> Path:
    """Where the API's configuration lives under the root."""
    return layout.root / "api" / "config.yaml"


@dataclass(frozen=True)
class User:
    """A Keystone user: its roles per project name."""

    id: str
    name: str
    password_hash: str
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    email: str | None = None
    enabled: bool = True  # a disabled user cannot authenticate (Keystone's user.enabled)
    description: str = ""
    default_project_id: str | None = None


@dataclass(frozen=True)
class Project:
    """A Keystone project (from the file, or created through the API)."""

    id: str
    name: str
    description: str = ""
    domain_id: str = DOMAIN_ID
    enabled: bool = True


@dataclass(frozen=True)
class Flavor:
    """A Nova flavor: memory in MiB, disk in GiB."""

    id: str
    name: str
    ram: int
    vcpus: int
    disk: int
    ephemeral: int = 0
    is_public: bool = True


@dataclass(frozen=True)
class DefaultNetwork:
    """The network every project sees, mapped to a host bridge (or a libvirt network)."""

    name: str = "default"
    bridge: str | None = "br0"
    libvirt_network: str | None = None

    @property
    def id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, f"network:{self.name}"))


@dataclass(frozen=True)
class ApiConfig:
    """Everything the API reads from its configuration file."""

    users: tuple[User, ...]
    projects: tuple[Project, ...]
    flavors: tuple[Flavor, ...]
    default_network: DefaultNetwork
    token_ttl: int = 3600
    region: str = "RegionOne"
    # Where servers are built (api/config_hypervisors.py): `hypervisors:`, or the one `libvirt_uri:` names.
    hypervisors: tuple[HypervisorConfig, ...] = (HypervisorConfig(name=HOSTNAME, uri="simulator", listed=False),)
    admin_user: str = "root"
    max_json_body: int = 1 << 20
    max_image_body: int = 64 << 30
    # The HTTP transport (api/transport.py): per worker process, against slow or hostile clients.
    header_timeout: float = 10.0  # seconds for a request's headers (from the accept, for the first)
    body_timeout: float = 20.0  # seconds for its body, plus one per body_min_rate bytes received
    body_min_rate: int = 16384
    idle_timeout: float = 120.0  # seconds a connection may idle between requests
    max_connections: int = 256
    max_connections_per_client: int = 32
    build_workers: int = 4
    stop_timeout: float = 60.0
    max_volume_size: int = 1000
    network_forward: str | None = None  # managed networks: isolated, or a libvirt forward mode
    quotas: QuotaDefaults = field(default_factory=QuotaDefaults)  # per-project limits until an admin sets some
    # Failed password authentications (api/identity/throttle.py): at most this many per user
    # name and per client address within auth_failure_window seconds (0: no limit); reaching
    # one refuses that user's or address's logins, right password or not, for auth_lockout seconds.
    auth_failures_per_user: int = 5
    auth_failures_per_address: int = 50
    auth_failure_window: float = 300.0
    auth_lockout: float = 300.0
    # The API's records and job queue: None keeps them in SQLite under the root (state.db); a libpq URI
    # (postgresql:///DBNAME?host=/socket/dir) puts them in a PostgreSQL database several roots can share.
    database: str | None = None

    def user_by_name(self, name: str) -> User | None:
        """The user called `name`, or None."""
        return next((u for u in self.users if u.name == name), None)


def _int(data: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(where, f"key {key!r}: {value!r} is not a non-negative integer")
    return value


def _seconds(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise InputError(where, f"key {key!r}: {value!r} is not a non-negative number of seconds")
    return float(value)


def _positive_seconds(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
        raise InputError(where, f"key {key!r} must be a number of seconds above 0")
    return float(value)


def _positive_int(data: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(where, f"key {key!r} must be an integer of at least 1")
    return value


def _forward(data: Mapping[str, Any], where: str) -> str | None:
    value = data.get("network_forward")
    if value is not None and value not in FORWARD_MODES:
        raise InputError(where, f"key 'network_forward': {value!r}: use one of {', '.join(FORWARD_MODES)}, "
                                "or leave it out for isolated networks")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise InputError(where, f"key {key!r}: {value!r} is not a non-empty string")
    return value


def parse_config(data: Any, where: str) -> ApiConfig:
    """Validate the parsed YAML document; errors name the key."""
    if not isinstance(data, dict):
        raise InputError(where, "must be a mapping")
    known = {"quotas", "users", "projects", "flavors", "network", "token_ttl", "region", "libvirt_uri", "admin_user",
             "max_json_body", "max_image_body", "build_workers", "stop_timeout", "max_volume_size",
             "network_forward", "auth_failures_per_user", "auth_failures_per_address", "auth_failure_window",
             "auth_lockout", "database", "hypervisors"}
    known |= TRANSPORT_KEYS
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InputError(where, f"unknown key(s) {', '.join(unknown)}")
    projects = []
    for index, entry in enumerate(data.get("projects") or []):
        at = f"{where}: projects[{index}]"
        if not isinstance(entry, dict):
            raise InputError(at, "must be a mapping with 'name'")
        name = _str(entry, "name", at)
        projects.append(Project(id=str(entry.get("id") or stable_id("project", name)), name=name,
                                description=str(entry.get("description") or ""),
                                enabled=entry.get("enabled", True) is not False))
    names = {p.name for p in projects}
    users = []
    for index, entry in enumerate(data.get("users") or []):
        at = f"{where}: users[{index}]"
        if not isinstance(entry, dict):
            raise InputError(at, "must be a mapping with 'name', 'password_hash' and 'roles'")
        name = _str(entry, "name", at)
        roles = entry.get("roles") or {}
        if not isinstance(roles, dict):
            raise InputError(f"{at} ({name})", "key 'roles' must map project names to role lists")
        for project, granted in roles.items():
            if project not in names:
                raise InputError(f"{at} ({name})", f"key 'roles': no project {project!r} in 'projects'")
            if not isinstance(granted, list) or not all(isinstance(r, str) for r in granted):
                raise InputError(f"{at} ({name})", f"key 'roles': {project!r} must list role names")
        users.append(User(id=str(entry.get("id") or stable_id("user", name)), name=name,
                          password_hash=_str(entry, "password_hash", f"{at} ({name})"),
                          roles={p: tuple(r) for p, r in roles.items()}, email=entry.get("email"),
                          enabled=entry.get("enabled", True) is not False,
                          description=str(entry.get("description") or ""),
                          default_project_id=entry.get("default_project_id") or None))
    flavors = []
    for index, entry in enumerate(data.get("flavors", DEFAULT_FLAVORS)):
        at = f"{where}: flavors[{index}]"
        if not isinstance(entry, dict):
            raise InputError(at, "must be a mapping with id, name, ram, vcpus, disk")
        if entry.get("id") in (None, ""):
            raise InputError(at, "key 'id' is missing")
        flavors.append(Flavor(id=str(entry["id"]),
                              name=_str(entry, "name", at), ram=_int(entry, "ram", 0, at),
                              vcpus=_int(entry, "vcpus", 1, at), disk=_int(entry, "disk", 0, at)))
    network = data.get("network") or {}
    if not isinstance(network, dict):
        raise InputError(where, "key 'network' must be a mapping (name, bridge or libvirt_network)")
    default_network = DefaultNetwork(name=str(network.get("name", "default")),
                                     bridge=network.get("bridge", None if network.get("libvirt_network") else "br0"),
                                     libvirt_network=network.get("libvirt_network"))
    return ApiConfig(
        users=tuple(users), projects=tuple(projects), flavors=tuple(flavors), default_network=default_network,
        token_ttl=_int(data, "token_ttl", 3600, where), region=_str(data, "region", where, "RegionOne"),
        hypervisors=parse_hypervisors(data, where),
        admin_user=_str(data, "admin_user", where, "root"),
        max_json_body=_int(data, "max_json_body", 1 << 20, where),
        max_image_body=_int(data, "max_image_body", 64 << 30, where),
        header_timeout=_positive_seconds(data, "header_timeout", 10.0, where),
        body_timeout=_positive_seconds(data, "body_timeout", 20.0, where),
        body_min_rate=_int(data, "body_min_rate", 16384, where),
        idle_timeout=_positive_seconds(data, "idle_timeout", 120.0, where),
        max_connections=_positive_int(data, "max_connections", 256, where),
        max_connections_per_client=_positive_int(data, "max_connections_per_client", 32, where),
        build_workers=max(1, _int(data, "build_workers", 4, where)),
        stop_timeout=_seconds(data, "stop_timeout", 60.0, where),
        max_volume_size=max(1, _int(data, "max_volume_size", 1000, where)),
        network_forward=_forward(data, where),
        quotas=parse_defaults(data.get("quotas"), where),
        auth_failures_per_user=_int(data, "auth_failures_per_user", 5, where),
        auth_failures_per_address=_int(data, "auth_failures_per_address", 50, where),
        auth_failure_window=_seconds(data, "auth_failure_window", 300.0, where),
        auth_lockout=_seconds(data, "auth_lockout", 300.0, where),
        database=None if data.get("database") is None else check_uri(data["database"], where),
    )


def read_document(path: Path) -> dict[str, Any]:
    """The raw YAML mapping (empty if the file does not exist yet)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = safeyaml.load(text, max_chars=MAX_CONFIG_CHARS)
    except safeyaml.YamlError as exc:
        raise InputError(exc.located(str(path)), exc.problem) from None
    return data or {}


def load_config(path: Path) -> ApiConfig:
    """Read and validate the configuration file."""
    if not path.is_file():
        raise InputError(str(path), "no API configuration: create a user first "
                                    "(python -m api users set NAME --project P --role admin)")
    return parse_config(read_document(path), str(path))


def write_document(path: Path, data: Mapping[str, Any]) -> None:
    """Replace the file atomically, 0600 (it holds password hashes); running servers see it at their next request."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        yaml.safe_dump(dict(data), stream, sort_keys=False)
    os.replace(tmp, path)
    # After the replace: a server that sees the bump re-reads the file (without it, within RECHECK_SECONDS).
    ChangeCounters.next_to(path).bump(Slot.CREDENTIALS)
