"""libvirt_volume: a storage volume (`<volume>`) in a pool.

Content (`create.content.url`: absolute path, file:// or http(s) URL) is
streamed into the new volume with virStorageVolUpload. On the simulated
hypervisor, which cannot upload, the source (url, size, sha256 for a local
file) is recorded in the node file's sidecar instead, and the capacity is
the file's size (0 for a URL the simulator never downloads), unless set.
A source that is another simulated volume's path (which has no file there)
copies that volume's record: a snapshot holds what its original held.

A larger `capacity` grows the volume in place, keeping its data: through the
running guest that uses it (virDomainBlockResize: qemu holds the image), else
virStorageVolResize; where libvirt cannot resize a volume (the test driver),
by a copy into a bigger volume (virStorageVolCreateXMLFrom) that takes the
name back. A smaller capacity still replaces the volume (shrinking loses data).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .. import content
from .. import xmlutil as X
from ..errors import Diagnostic, ProviderError, libvirt_failure
from ..hypervisor import Hypervisor, Session
from ..schema import UNKNOWN, Attr, ResourceSchema, computed, optional, required, single
from ..simulator import ContentRecord, volume_key
from .base import Resource, State, not_found

_PERMISSIONS = (
    optional("group", "string", "Sets the group ownership of the volume."),
    optional("label", "string", "Configures the label associated with the permissions."),
    optional("mode", "string", "Specifies the mode (file permissions) of the volume."),
    optional("owner", "string", "Defines the owner of the volume."),
)

SCHEMA = ResourceSchema("libvirt_volume", (
    required("name", "string", "Name of the volume, unique within the pool.", replace=True),
    required("pool", "string", "Name of the storage pool where the volume will be created", replace=True),
    # Optional in the reference, and computed from the content when absent.
    Attr("capacity", "number", optional=True, computed=True, replace=True,
         description="Volume capacity in bytes (required unless using create.content)"),
    # libvirt always reports a type (file, block, …): Optional+Computed, so
    # an imported volume does not plan a replacement for a type never set.
    Attr("type", "string", optional=True, computed=True, replace=True,
         description="Specifies the type of the storage volume."),
    single("target",
           single("format", required("type", "string", "Format type of the volume.")),
           single("permissions", *_PERMISSIONS),
           computed("path", "string", "Volume path on the host filesystem"),
           replace=True),
    single("backing_store",
           required("path", "string", "Path to the backing store of the volume."),
           single("format", required("type", "string", "Format type of the backing store.")),
           replace=True),
    single("create",
           single("content", required("url", "string", "URL to download content from"), required_=True),
           doc="Volume creation options for initializing volume content from external sources",
           replace=True),
    computed("allocation", "number", "Space allocated for the volume.", volatile=True),
    computed("id", "string", "Volume identifier (same as key)"),
    computed("key", "string", "Unique key of the volume."),
    computed("path", "string", "Volume path on the host filesystem (same as target.path)"),
    computed("physical", "number", "Physical size of the volume.", volatile=True),
), description="Storage volume within a storage pool")


def volume_xml(planned: State, capacity: int) -> str:
    """The `<volume>` definition for a planned state."""
    root = ET.Element("volume")
    if planned.get("type"):
        root.set("type", planned["type"])
    X.sub(root, "name", planned["name"])
    X.sub(root, "capacity", capacity, unit="bytes")
    # Sparse: without it libvirt preallocates qcow2 metadata for the whole
    # capacity (over a minute for 10 GiB on a slow disk).
    X.sub(root, "allocation", 0, unit="bytes")
    target = planned.get("target") or {}
    fmt = (target.get("format") or {}).get("type")
    perms = target.get("permissions") or {}
    if fmt or any(perms.values()):
        t = X.sub(root, "target")
        if fmt:
            X.sub(t, "format", type=fmt)
        if any(perms.values()):
            p = X.sub(t, "permissions")
            for key in ("mode", "owner", "group", "label"):
                if perms.get(key) is not None:
                    X.sub(p, key, perms[key])
    backing = planned.get("backing_store")
    if backing:
        b = X.sub(root, "backingStore")
        X.sub(b, "path", backing["path"])
        bfmt = (backing.get("format") or {}).get("type")
        if bfmt:
            X.sub(b, "format", type=bfmt)
    return X.to_string(root)


def observe(vol, pool_name: str, create: State | None) -> State:
    """The state of a libvirt volume; `create` is carried over (not observable)."""
    root = X.parse(vol.XMLDesc(0))
    path = vol.path()
    perms = X.drop_nulls({k: X.get(root, f"target/permissions/{k}") for k in ("group", "label", "mode", "owner")})
    fmt = X.get(root, "target/format", "type")
    backing_path = X.get(root, "backingStore/path")
    bfmt = X.get(root, "backingStore/format", "type")
    return {
        "name": vol.name(), "pool": pool_name,
        "capacity": X.get_int(root, "capacity"),
        "type": root.get("type"),
        "target": {"format": {"type": fmt} if fmt else None, "permissions": perms, "path": path},
        "backing_store": {"path": backing_path, "format": {"type": bfmt} if bfmt else None}
        if backing_path else None,
        "create": create,
        "allocation": X.get_int(root, "allocation"),
        "id": vol.key(), "key": vol.key(), "path": path,
        "physical": X.get_int(root, "physical"),
    }


def _pool(conn, name: str):
    import libvirt

    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        raise ProviderError(f"Storage pool {name!r} not found",
                            "Create the pool first (the shared workspace owns it), or fix `pool`.",
                            ("pool",)) from exc


def _refresh(pool) -> None:
    """Let libvirt see files created behind its back; best effort, because
    libvirt refuses while another volume of the pool is being uploaded."""
    import libvirt

    try:
        if pool.isActive():
            pool.refresh(0)
    except libvirt.libvirtError:
        pass


def _lookup(pool, name: str):
    import libvirt

    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return None


def _simulated_record(src: content.ContentSource) -> ContentRecord:
    size = content.local_size(src) if src.is_local else None
    sha = content.local_sha256(src) if src.is_local else None
    return ContentRecord(src.url, size, sha)


def _simulated_copy(s: Session, src: content.ContentSource) -> ContentRecord | None:
    """Content copied from another simulated volume (given by its path): its record, taken now.

    The simulator's pool volumes have no files; copying one copies what it
    is recorded to hold (or, for a blank one, names it as the source).
    """
    import libvirt

    if src.local_path is None or src.local_path.exists():
        return None
    try:
        vol = s.conn.storageVolLookupByPath(str(src.local_path))
    except libvirt.libvirtError:
        return None
    held = s.sim.sidecar.volumes.get(volume_key(vol.storagePoolLookupByVolume().name(), vol.name()))
    return ContentRecord(**held) if held else ContentRecord(src.url, vol.info()[1], None)


def _grows(prior: State, planned: State) -> bool:
    """Whether the plan asks for a larger capacity than the volume has (both known)."""
    before, after = prior.get("capacity"), planned.get("capacity")
    return isinstance(before, int) and isinstance(after, int) and after > before


def _running_user(conn, path: str):
    """(domain, target dev) of a running guest with the volume as a disk, or None."""
    for dom in conn.listAllDomains(0):
        if not dom.isActive():
            continue
        for disk in X.parse(dom.XMLDesc(0)).iter("disk"):
            source, target = disk.find("source"), disk.find("target")
            if source is None or target is None:
                continue
            used = source.get("file") or source.get("dev")
            if used is None and source.get("volume"):
                used = _volume_path(conn, source.get("pool"), source.get("volume"))
            if used == path:
                return dom, target.get("dev")
    return None


def _volume_path(conn, pool: str | None, name: str) -> str | None:
    import libvirt

    try:
        return conn.storagePoolLookupByName(pool).storageVolLookupByName(name).path()
    except libvirt.libvirtError:
        return None


def _grow_by_copy(pool, vol, capacity: int) -> None:
    """Grow a volume where libvirt has no resize: copy it into a bigger one, then that copy into one of its name.

    Both steps are virStorageVolCreateXMLFrom, which copies the data into a
    volume of the capacity its XML gives, as on any libvirt.
    """
    root = X.parse(vol.XMLDesc(0))
    name = vol.name()
    for kept in ("name", "capacity", "allocation", "key", "source", "physical"):
        for child in root.findall(kept):
            root.remove(child)
    target = root.find("target")
    if target is not None:
        for child in target.findall("path"):
            target.remove(child)

    def described(as_name: str) -> str:
        copy = ET.fromstring(X.to_string(root))
        X.sub(copy, "name", as_name)
        X.sub(copy, "capacity", capacity, unit="bytes")
        X.sub(copy, "allocation", 0, unit="bytes")
        return X.to_string(copy)

    grown = pool.createXMLFrom(described(f"{name}.grow"), vol, 0)
    vol.delete(0)
    pool.createXMLFrom(described(name), grown, 0)
    grown.delete(0)


class VolumeResource(Resource):
    """Volumes change in place only to grow (or to record `create` after an import); every other change
    replaces them."""

    schema = SCHEMA

    def validate(self, config: State) -> list[Diagnostic]:
        if config.get("capacity") is None and config.get("create") is None:
            return [Diagnostic("Volume size is not known",
                               "Set `capacity` (bytes), or `create.content.url` to size the volume "
                               "from its content.", ("capacity",))]
        return []

    def adjust_create_plan(self, planned: State, config: State | None) -> State:
        # A configured capacity is what the volume will have.
        if config and config.get("capacity") is not None:
            planned["capacity"] = config["capacity"]
        return planned

    def requires_replace(self, prior: State, planned: State) -> list[tuple[str, ...]]:
        paths = super().requires_replace(prior, planned)
        if prior.get("create") is None and ("create",) in paths:
            # An imported volume has no recorded `create`: adding it to the
            # state must not destroy the volume's data.
            paths.remove(("create",))
        if ("capacity",) in paths and _grows(prior, planned):
            paths.remove(("capacity",))  # grown in place (update)
        return paths

    def create(self, hv: Hypervisor, planned: State) -> State:
        import libvirt

        src = content.parse(planned["create"]["content"]["url"]) if planned.get("create") else None
        with hv.writing() as s:
            pool = _pool(s.conn, planned["pool"])
            try:
                _refresh(pool)
                vol = _lookup(pool, planned["name"])
                if vol is not None:
                    # Left by an interrupted apply: names carry a content
                    # digest, so a same-named volume holds the same thing.
                    self._check_adoptable(vol, planned)
                vol = self._create(s, pool, vol, planned, src)
                return observe(vol, planned["pool"], planned.get("create"))
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"create volume {planned['name']!r} in pool {planned['pool']!r}", exc) from exc

    @staticmethod
    def _check_adoptable(vol, planned: State) -> None:
        have = observe(vol, planned["pool"], None)
        want_fmt = ((planned.get("target") or {}).get("format") or {}).get("type")
        have_fmt = ((have.get("target") or {}).get("format") or {}).get("type")
        want_backing = (planned.get("backing_store") or {}).get("path")
        have_backing = (have.get("backing_store") or {}).get("path")
        if (want_fmt and want_fmt != have_fmt) or want_backing != have_backing:
            raise ProviderError(
                f"Volume {planned['name']!r} already exists in pool {planned['pool']!r} and differs",
                f"It has format {have_fmt!r} and backing store {have_backing!r}; the plan wants "
                f"{want_fmt!r} and {want_backing!r}. Delete it (virsh vol-delete --pool "
                f"{planned['pool']} {planned['name']}) or import it.", ("name",))

    @staticmethod
    def _create(s: Session, pool, existing, planned: State, src: content.ContentSource | None):
        capacity = planned.get("capacity")
        capacity = None if capacity is UNKNOWN else capacity
        if s.simulated:
            record = None
            if src is not None:
                record = _simulated_copy(s, src) or _simulated_record(src)
                capacity = capacity if capacity is not None else (record.size or 0)
            vol = existing or pool.createXML(volume_xml(planned, capacity or 0), 0)
            if record is not None:
                s.sim.record_content(planned["pool"], planned["name"], record)
            return vol
        if src is None:
            return existing or pool.createXML(volume_xml(planned, capacity), 0)
        with content.fetch(src) as (f, size):
            vol = existing or pool.createXML(volume_xml(planned, capacity if capacity is not None else size), 0)
            # Re-uploading into an adopted volume makes an interrupted upload whole.
            content.upload(s.conn, vol, f, size)
        return vol

    def update(self, hv: Hypervisor, prior: State, planned: State) -> State:
        # Reachable for a larger capacity, and for recording `create` on an imported volume.
        if _grows(prior, planned):
            self._grow(hv, prior, planned["capacity"])
        observed = self.read(hv, prior)
        if observed is None:
            raise ProviderError(f"Volume {prior['name']!r} disappeared during apply", "Run terraform apply again.")
        observed["create"] = planned.get("create")
        return observed

    @staticmethod
    def _grow(hv: Hypervisor, prior: State, capacity: int) -> None:
        """Grow the volume to `capacity` bytes, its data kept."""
        import libvirt

        with hv.writing() as s:
            pool = _pool(s.conn, prior["pool"])
            vol = _lookup(pool, prior["name"])
            if vol is None:
                raise ProviderError(f"Volume {prior['name']!r} disappeared during apply", "Run terraform apply again.")
            guest = _running_user(s.conn, vol.path())
            # The first of these the driver supports does it (the test driver has neither resize).
            ways = ([lambda: guest[0].blockResize(guest[1], capacity, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)]
                    if guest else []) + [lambda: vol.resize(capacity, 0), lambda: _grow_by_copy(pool, vol, capacity)]
            try:
                for way in ways:
                    try:
                        way()
                        return
                    except libvirt.libvirtError as exc:
                        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT or way is ways[-1]:
                            raise
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"grow volume {prior['name']!r} to {capacity} bytes", exc,
                                      "Is there room in the pool, and is no other process holding the image?"
                                      ) from exc

    def delete(self, hv: Hypervisor, prior: State) -> None:
        import libvirt

        with hv.writing() as s:
            try:
                pool = s.conn.storagePoolLookupByName(prior["pool"])
            except libvirt.libvirtError:
                return  # the pool is gone, and its volumes with it
            vol = _lookup(pool, prior["name"])
            if vol is None:
                return
            try:
                vol.delete(0)
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"delete volume {prior['name']!r}", exc,
                                      "A running guest may still use it, or another volume may use it as "
                                      "its backing store.") from exc

    def read(self, hv: Hypervisor, prior: State) -> State | None:
        import libvirt

        with hv.reading() as conn:
            try:
                pool = conn.storagePoolLookupByName(prior["pool"])
            except libvirt.libvirtError:
                return None
            vol = _lookup(pool, prior["name"])
            return observe(vol, prior["pool"], prior.get("create")) if vol is not None else None

    def import_state(self, hv: Hypervisor, ident: str) -> State:
        """`ident` is a volume key/path, or POOL/NAME."""
        import libvirt

        with hv.reading() as conn:
            vol = None
            try:
                vol = conn.storageVolLookupByKey(ident)
            except libvirt.libvirtError:
                if "/" in ident.strip("/") and not ident.startswith("/"):
                    pool_name, name = ident.split("/", 1)
                    with_pool = _lookup(_pool(conn, pool_name), name)
                    vol = with_pool
            if vol is None:
                raise not_found("volume", ident, "Give the volume's key (its path) or POOL/NAME.")
            pool_name = vol.storagePoolLookupByVolume().name()
            create = None
            if hv.simulated:
                rec = hv.node.content(pool_name, vol.name())
                create = {"content": {"url": rec.url}} if rec else None
            return observe(vol, pool_name, create)
