"""A persistent simulated hypervisor on top of libvirt's test driver.

libvirt's test driver (`test:///ABS/PATH.xml`) loads domains, storage pools
(with their volumes) and networks from a `<node>` file, keeps every change in
the memory of that one connection, and never writes back. This module makes
such a node file behave like a hypervisor that outlives a process:

* every mutation runs in a `transaction()`: an exclusive flock on
  `<node>.lock`, a fresh connection loaded from the file, the operation, then
  every domain (with its run state, as `<test:runstate>`), pool (with its
  volumes) and network dumped back into the file, written to a temporary file
  and renamed over the original. Separate terraform processes applying
  different domains concurrently therefore never lose each other's objects,
  and a process killed half-way leaves the previous, complete file;
* what the node file cannot hold lives in a JSON sidecar
  (`<node>.content.json`): the content source of each volume (the test driver
  cannot upload bytes: url, size, sha256 for a local file) and the autostart
  flags of domains, pools and networks (which the driver does not read from
  XML). The sidecar is written before the node file, so a crash between the
  two leaves only an unused sidecar entry, pruned by the next transaction;
* reads open a fresh connection without the lock: the rename makes every
  file a reader can see complete;
* opening a node file is the expensive part (libvirt parses every domain:
  ~0.06 s at 50 domains), so a process keeps the connection of its last
  transaction and uses it for the next one, or lends it to a read, while
  the node file is still the one it wrote (same inode, mtime, size: any
  other writer renames a new file in). A transaction that fails drops it;
* writing it back re-serialises only the objects whose XML description
  changed (dump_node).

Public helpers for other code: `is_simulated(uri)`, `open_readonly(uri)`,
`snapshot(uri)` and `transaction(uri)`.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
ET.register_namespace("test", TEST_NS)

EMPTY_NODE = "<node/>\n"
SIDECAR_VERSION = 1

# virDomainState values the driver accepts in <test:runstate>.
_SHUTOFF = 5

# node file -> (identity of the file this process last wrote, the connection that wrote it).
_last_written: dict[Path, tuple[tuple[int, ...], Any]] = {}
_last_written_lock = threading.Lock()


@atexit.register
def _close_kept() -> None:
    # Before interpreter teardown: a connection freed after it makes libvirt-python's __del__ fail noisily.
    with _last_written_lock:
        kept = [conn for _ident, conn in _last_written.values()]
        _last_written.clear()
    for conn in kept:
        conn.close()


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)


def node_file(uri: str) -> Path | None:
    """The node file behind a `test:///ABS/PATH.xml` URI, else None.

    `test:///default` (shared in-process state) and remote/daemon test URIs
    (`test+unix://…`) are not file-backed and are left to libvirt as is.
    """
    parts = urlsplit(uri)
    if parts.scheme != "test" or parts.netloc or parts.path in ("", "/", "/default"):
        return None
    return Path(parts.path)


def is_simulated(uri: str) -> bool:
    """True when `uri` names a file-backed test-driver hypervisor."""
    return node_file(uri) is not None


@dataclass
class ContentRecord:
    """Where a simulated volume's bytes would have come from."""

    url: str
    size: int | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form stored in the sidecar."""
        return {"url": self.url, "size": self.size, "sha256": self.sha256}


@dataclass
class Sidecar:
    """The JSON sidecar: volume content records and autostart flags."""

    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    autostart: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Sidecar":
        """Read the sidecar; a missing file is an empty sidecar."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        return cls(volumes=dict(data.get("volumes", {})), autostart=dict(data.get("autostart", {})))

    def dumps(self) -> str:
        """Stable JSON text (sorted keys, so unchanged state is unchanged bytes)."""
        return json.dumps({"version": SIDECAR_VERSION, "volumes": self.volumes,
                           "autostart": self.autostart}, indent=2, sort_keys=True) + "\n"


def volume_key(pool: str, volume: str) -> str:
    """Sidecar key of a volume."""
    return f"{pool}/{volume}"


class SimulatedNode:
    """One node file, its lock file and its sidecar."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.sidecar_path = self.path.with_name(self.path.stem + ".content.json")

    @property
    def uri(self) -> str:
        """The test-driver URI for this node file."""
        return f"test://{self.path}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @contextlib.contextmanager
    def transaction(self) -> Iterator["SimSession"]:
        """Serialised read-modify-write of the node file.

        The body's changes are persisted only if it returns normally: an
        exception leaves the file exactly as it was.
        """
        import libvirt

        with self._locked():
            if not self.path.exists():
                _atomic_write(self.path, EMPTY_NODE)
            self._remove_stale_temporaries()
            with _last_written_lock:
                ident, conn = _last_written.pop(self.path, (None, None))
            if conn is None or ident != _identity(self.path):
                if conn is not None:
                    conn.close()  # another process changed the node since: its file is the truth
                conn = libvirt.open(self.uri)
            kept = False
            try:
                sidecar = Sidecar.load(self.sidecar_path)
                _apply_autostart(conn, sidecar)
                session = SimSession(conn, sidecar)
                yield session
                _fault_injection_pause()
                self._persist(conn, session)
                written = _identity(self.path)
                if written is not None:
                    with _last_written_lock:
                        _last_written[self.path] = (written, conn)
                    kept = True
            finally:
                if not kept:
                    conn.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A connection showing the current file, for reading; changes are discarded.

        While the file is still the one this process last wrote, that
        transaction's connection is lent (opening the file parses every
        domain in it); no transaction uses it meanwhile, and a reader does
        not change it.
        """
        import libvirt

        lent = self._borrow()
        if lent is not None:
            try:
                yield lent[1]
            finally:
                with _last_written_lock:
                    if self.path in _last_written or lent[0] != _identity(self.path):
                        lent[1].close()  # a newer transaction's connection is kept instead
                    else:
                        _last_written[self.path] = lent
            return
        if self.path.exists():
            conn = libvirt.open(self.uri)
        else:
            # Nothing was ever written: an empty hypervisor, without creating files on a read.
            with tempfile.NamedTemporaryFile("w", suffix=".xml") as tmp:
                tmp.write(EMPTY_NODE)
                tmp.flush()
                conn = libvirt.open(f"test://{tmp.name}")
        try:
            _apply_autostart(conn, Sidecar.load(self.sidecar_path))
            yield conn
        finally:
            conn.close()

    def _borrow(self) -> tuple[tuple[int, ...], Any] | None:
        """This process's last transaction's (file identity, connection), taken out while the file is unchanged."""
        with _last_written_lock:
            kept = _last_written.get(self.path)
            if kept is None or kept[0] != _identity(self.path):
                return None
            return _last_written.pop(self.path)

    def content(self, pool: str, volume: str) -> ContentRecord | None:
        """The recorded content source of a volume, if any."""
        rec = Sidecar.load(self.sidecar_path).volumes.get(volume_key(pool, volume))
        return ContentRecord(**rec) if rec else None

    def _remove_stale_temporaries(self) -> None:
        # Left by a writer killed between write and rename; we hold the lock,
        # so no live writer owns them.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        for stale in self.path.parent.glob(f".{self.sidecar_path.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def _persist(self, conn: Any, session: "SimSession") -> None:
        node_xml = dump_node(conn, self.path)
        sidecar = session.sidecar
        live_volumes, autostart = _inventory(conn)
        sidecar.volumes = {k: v for k, v in sidecar.volumes.items() if k in live_volumes}
        sidecar.autostart = autostart
        text = sidecar.dumps()
        if not self.sidecar_path.exists() or self.sidecar_path.read_text() != text:
            _atomic_write(self.sidecar_path, text)
        _atomic_write(self.path, node_xml)


@dataclass
class SimSession:
    """What a transaction body gets: the connection and the sidecar to update."""

    conn: Any
    sidecar: Sidecar

    def record_content(self, pool: str, volume: str, record: ContentRecord) -> None:
        """Remember the content source of a volume (instead of uploading it)."""
        self.sidecar.volumes[volume_key(pool, volume)] = record.to_json()


def dump_node(conn: Any, previous: Path) -> str:
    """Serialise a test-driver connection's domains, pools and networks as a node file.

    Top-level elements of the previous file that we do not manage (host
    `<cpu>`, `<memory>`, `<device>`, `<interface>`, `<auth>`) are kept.
    Each object is serialised from its XML description, and that text is
    reused while the description stays the same (_fragment): a change to
    one domain no longer re-serialises every other (the 50th domain of a
    node costs about what the 1st does).
    """
    import libvirt

    kept = _kept(previous)
    fragments = list(kept)
    domains = sorted(conn.listAllDomains(), key=lambda d: d.name())
    for dom in domains:
        persistent = dom.isPersistent()
        flags = libvirt.VIR_DOMAIN_XML_SECURE | (libvirt.VIR_DOMAIN_XML_INACTIVE if persistent else 0)
        marks = ("test:transient",) * (not persistent) + (f"test:runstate={dom.state()[0]}",)
        fragments.append(_fragment(dom.XMLDesc(flags), marks))
    for pool in sorted(conn.listAllStoragePools(), key=lambda p: p.name()):
        volumes = sorted(pool.listAllVolumes(), key=lambda v: v.name()) if pool.isActive() else []
        # The test driver rejects INACTIVE for pools and networks.
        fragments.append(_fragment(pool.XMLDesc(0), tuple(v.XMLDesc(0) for v in volumes)))
    for net in sorted(conn.listAllNetworks(), key=lambda n: n.name()):
        fragments.append(_fragment(net.XMLDesc(0)))
    if not fragments:
        return "<node />\n"
    declaration = f' xmlns:test="{TEST_NS}"' if domains else ""
    text = f"<node{declaration}>\n  " + "\n  ".join(fragments) + "\n</node>\n"
    _remember(_kept_fragments, _digest(text), kept, _KEPT_LIMIT)
    return text


# Serialised objects by (XML description, what is added to it), and the kept elements of the node
# files this process read or wrote by their digest; each emptied when it reaches its limit.
_fragment_cache: dict[tuple[str, tuple[str, ...]], str] = {}
_kept_fragments: dict[str, list[str]] = {}
_FRAGMENT_LIMIT = 4096
_KEPT_LIMIT = 16


def _fragment(description: str, added: tuple[str, ...] = ()) -> str:
    """One top-level element of the node file, indented as a child of <node>.

    `added`: for a domain its test-driver marks (`test:transient`,
    `test:runstate=N`), for a pool its volumes' XML descriptions.
    """
    key = (description, added)
    text = _fragment_cache.get(key)
    if text is not None:
        return text
    element = ET.fromstring(description)
    if element.tag == "domain":
        element.attrib.pop("id", None)
        for mark in added:
            name, _, value = mark.partition("=")
            ET.SubElement(element, name).text = value or None
    else:
        for volume in added:
            element.append(ET.fromstring(volume))
    ET.indent(element, level=1)
    text = ET.tostring(element, encoding="unicode")
    _remember(_fragment_cache, key, text, _FRAGMENT_LIMIT)
    return text


def _kept(previous: Path) -> list[str]:
    """The previous file's top-level elements that are not domains, pools or networks, serialised."""
    try:
        text = previous.read_text()
    except FileNotFoundError:
        return []
    digest = _digest(text)
    kept = _kept_fragments.get(digest)
    if kept is not None:
        return kept
    try:
        old = ET.fromstring(text)
    except ET.ParseError:
        return []
    out = []
    for child in old:
        if child.tag not in ("domain", "pool", "network"):
            child.tail = None
            ET.indent(child, level=1)
            out.append(ET.tostring(child, encoding="unicode"))
    _remember(_kept_fragments, digest, out, _KEPT_LIMIT)
    return out


def _remember(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _inventory(conn: Any) -> tuple[set[str], dict[str, list[str]]]:
    volumes: set[str] = set()
    autostart: dict[str, list[str]] = {"domains": [], "pools": [], "networks": []}
    for dom in conn.listAllDomains():
        if dom.isPersistent() and dom.autostart():
            autostart["domains"].append(dom.name())
    for pool in conn.listAllStoragePools():
        if pool.autostart():
            autostart["pools"].append(pool.name())
        if pool.isActive():
            volumes.update(volume_key(pool.name(), v.name()) for v in pool.listAllVolumes())
    for net in conn.listAllNetworks():
        if net.autostart():
            autostart["networks"].append(net.name())
    return volumes, {k: sorted(v) for k, v in autostart.items()}


def _apply_autostart(conn: Any, sidecar: Sidecar) -> None:
    import libvirt

    lookups = (("domains", conn.lookupByName), ("pools", conn.storagePoolLookupByName),
               ("networks", conn.networkLookupByName))
    for kind, lookup in lookups:
        for name in sidecar.autostart.get(kind, []):
            try:
                lookup(name).setAutostart(1)
            except libvirt.libvirtError:
                continue  # removed since; the next transaction prunes it


def _fault_injection_pause() -> None:
    """Tests set PROVISIONER_SIM_COMMIT_DELAY (seconds) to widen the window
    between an operation and its commit, so a kill -9 can land inside it."""
    delay = os.environ.get("PROVISIONER_SIM_COMMIT_DELAY")
    if delay:
        import time

        time.sleep(float(delay))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- public helpers -----------------------------------------------------------------

def _node(uri: str) -> SimulatedNode:
    path = node_file(uri)
    if path is None:
        raise ValueError(f"{uri!r} is not a file-backed test:/// URI")
    return SimulatedNode(path)


def open_readonly(uri: str) -> Any:
    """Open a libvirt connection for reading; the caller closes it.

    For a `test:///ABS/PATH.xml` URI the connection reflects the node file as
    last persisted (including autostart flags); changes made through it are
    never written back. Any other URI is opened read-only by libvirt.
    """
    import libvirt

    path = node_file(uri)
    if path is None:
        return libvirt.openReadOnly(uri)
    if not path.exists():
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as tmp:
            tmp.write(EMPTY_NODE)
            tmp.flush()
            return libvirt.open(f"test://{tmp.name}")
    conn = libvirt.open(f"test://{path}")
    _apply_autostart(conn, Sidecar.load(SimulatedNode(path).sidecar_path))
    return conn


def snapshot(uri: str) -> contextlib.AbstractContextManager[Any]:
    """Context manager form of `open_readonly` for a test:/// node file."""
    return _node(uri).snapshot()


def transaction(uri: str) -> contextlib.AbstractContextManager[SimSession]:
    """Locked read-modify-write of a test:/// node file (see module docstring)."""
    return _node(uri).transaction()


def content_record(uri: str, pool: str, volume: str) -> ContentRecord | None:
    """The content source recorded for a simulated volume, if any."""
    return _node(uri).content(pool, volume)
