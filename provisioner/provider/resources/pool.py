"""libvirt_pool: a storage pool (`<pool>`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .. import xmlutil as X
from ..errors import ProviderError, libvirt_failure
from ..hypervisor import Hypervisor
from ..schema import ResourceSchema, computed, optional, required, single
from .base import DefinedObjectResource, State, lookup_first

SCHEMA = ResourceSchema("libvirt_pool", (
    required("name", "string", "Sets the unique name for the storage pool.", replace=True),
    required("type", "string", "Specifies the type of the storage pool being defined.", replace=True),
    single("target",
           optional("path", "string", "Defines the path in the host filesystem where the storage pool is mapped."),
           doc="Target path and permissions for the storage pool", replace=True),
    computed("allocation", "number", "Amount of storage allocated in the pool.", volatile=True),
    computed("available", "number", "Amount of storage available for new volumes.", volatile=True),
    computed("capacity", "number", "Total capacity of the storage pool.", volatile=True),
    computed("id", "string", "Pool UUID (same as uuid)"),
    computed("uuid", "string", "Pool UUID."),
), description="Storage pool")


def pool_xml(state: State) -> str:
    """The `<pool>` definition for a planned state."""
    root = ET.Element("pool", type=state["type"])
    X.sub(root, "name", state["name"])
    path = (state.get("target") or {}).get("path")
    if path:
        X.sub(X.sub(root, "target"), "path", path)
    return X.to_string(root)


def observe(pool) -> State:
    """The state of a libvirt pool object."""
    root = X.parse(pool.XMLDesc(0))
    _, capacity, allocation, available = pool.info()
    uuid = pool.UUIDString()
    path = X.get(root, "target/path")
    return {
        "name": pool.name(), "type": root.get("type"),
        "target": {"path": path} if path else None,
        "allocation": allocation, "available": available, "capacity": capacity,
        "id": uuid, "uuid": uuid,
    }


def find(conn, ident: str | None, name: str | None):
    """A pool by UUID, falling back to its name; None when absent."""
    return lookup_first((conn.storagePoolLookupByUUIDString, ident), (conn.storagePoolLookupByName, name))


class PoolResource(DefinedObjectResource):
    """Defines, builds and starts a pool; set to autostart on a real host."""

    schema = SCHEMA
    noun = "storage pool"
    find = staticmethod(find)
    observe = staticmethod(observe)

    def create(self, hv: Hypervisor, planned: State) -> State:
        import libvirt

        with hv.writing() as s:
            pool = find(s.conn, None, planned["name"])
            try:
                if pool is not None:
                    # Left by an interrupted apply (or made by hand): adopt it
                    # when it is the same pool, rather than fail forever.
                    self._check_adoptable(observe(pool), planned)
                else:
                    pool = s.conn.storagePoolDefineXML(pool_xml(planned), 0)
                    pool.build(0)
                if not pool.isActive():
                    pool.create(0)
                if not s.simulated:
                    pool.setAutostart(1)
                return observe(pool)
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"create storage pool {planned['name']!r}", exc,
                                      "For a dir pool, the parent of target.path must exist and be "
                                      "writable by libvirt.") from exc

    @staticmethod
    def _check_adoptable(existing: State, planned: State) -> None:
        want = (planned.get("target") or {}).get("path")
        have = (existing.get("target") or {}).get("path")
        if existing["type"] != planned["type"] or (want and want != have):
            raise ProviderError(
                f"Storage pool {planned['name']!r} already exists with a different definition",
                f"It is a {existing['type']!r} pool at {have!r}; the plan wants a {planned['type']!r} pool "
                f"at {want!r}. Import it (terraform import libvirt_pool.NAME {planned['name']}) "
                "or remove it with virsh pool-destroy/pool-undefine.", ("name",))
