"""libvirt_domain: a virtual machine.

Lifecycle:
* create: define the persistent domain, set autostart, start it when
  `running = true`. A same-named domain left by an interrupted apply is
  adopted (redefined with the plan) instead of failing.
* update in place (everything except name and type): the persistent
  definition is redefined from the plan (keeping UUID and generated MACs). If
  the domain is running and anything but description/autostart/running
  changed, it is restarted so the new definition takes effect (graceful
  shutdown, destroyed after SHUTDOWN_TIMEOUT seconds). `running` starts or
  stops it.
* delete: destroy (hard stop) and undefine, including managed-save images,
  snapshot and checkpoint metadata and NVRAM.
"""

from __future__ import annotations

import time

from ..errors import Diagnostic, ProviderError, libvirt_failure
from ..hypervisor import Hypervisor
from ..schema import conform, project
from . import domain_xml
from .base import Resource, State, lookup_first, not_found
from .domain_schema import SCHEMA

SHUTDOWN_TIMEOUT = 60.0
# Changing only these needs no restart of a running guest.
_LIVE_ONLY = ("description", "autostart", "running", "id", "uuid")


def _is_running(dom) -> bool:
    import libvirt

    return dom.state()[0] not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED,
                                  libvirt.VIR_DOMAIN_NOSTATE)


def find(conn, uuid: str | None, name: str | None):
    """A domain by UUID, falling back to its name; None when absent."""
    return lookup_first((conn.lookupByUUIDString, uuid), (conn.lookupByName, name))


def observe(dom, prior: State | None) -> State:
    """State of a libvirt domain object."""
    import libvirt

    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
    return domain_xml.observe(dom.XMLDesc(flags), running=_is_running(dom), autostart=bool(dom.autostart()),
                              dom_id=dom.ID(), prior=prior)


def _stop(dom, timeout: float) -> None:
    """Graceful shutdown, then a hard stop when the guest does not comply."""
    import libvirt

    if not _is_running(dom):
        return
    try:
        dom.shutdown()
    except libvirt.libvirtError:
        pass  # no ACPI / agent: fall through to destroy
    deadline = time.monotonic() + timeout
    while _is_running(dom) and time.monotonic() < deadline:
        time.sleep(0.5)
    if _is_running(dom):
        dom.destroy()


class DomainResource(Resource):
    """Maps libvirt_domain onto a persistent libvirt domain."""

    schema = SCHEMA

    def validate(self, config: State) -> list[Diagnostic]:
        diags = []
        devices = config.get("devices") or {}
        for i, nic in enumerate(devices.get("interfaces") or []):
            src = (nic or {}).get("source") or {}
            if src.get("bridge") is not None and src.get("network") is not None:
                diags.append(Diagnostic("Interface has two sources",
                                        "Set only one of source.bridge and source.network.",
                                        ("devices", "interfaces", i, "source")))
        for i, disk in enumerate(devices.get("disks") or []):
            src = (disk or {}).get("source") or {}
            if src.get("volume") is not None and src.get("file") is not None:
                diags.append(Diagnostic("Disk has two sources",
                                        "Set only one of source.volume and source.file.",
                                        ("devices", "disks", i, "source")))
        return diags

    def create(self, hv: Hypervisor, planned: State) -> State:
        import libvirt

        with hv.writing() as s:
            existing = find(s.conn, None, planned["name"])
            try:
                if existing is None:
                    dom = s.conn.defineXML(domain_xml.build(planned))
                    restart = False
                else:
                    # Left by an interrupted apply (or made by hand): adopt it,
                    # restarting only if its definition differs from the plan.
                    restart = _is_running(existing) and self._differs(existing, planned)
                    dom = s.conn.defineXML(domain_xml.build(
                        planned, existing.UUIDString(),
                        domain_xml.interface_macs(existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))))
                self._converge(dom, planned, restart=restart)
                return observe(dom, planned)
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"create domain {planned['name']!r}", exc, _hint(exc)) from exc

    def update(self, hv: Hypervisor, prior: State, planned: State) -> State:
        import libvirt

        with hv.writing() as s:
            dom = find(s.conn, prior.get("uuid"), prior.get("name"))
            if dom is None:
                raise ProviderError(f"Domain {prior['name']!r} disappeared",
                                    "It was removed while Terraform was planning; run terraform apply again.")
            try:
                current = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                needs_restart = any(prior.get(k) != planned.get(k) for k in planned if k not in _LIVE_ONLY)
                dom = s.conn.defineXML(domain_xml.build(planned, dom.UUIDString(),
                                                        domain_xml.interface_macs(current)))
                self._converge(dom, planned, restart=needs_restart)
                return observe(dom, planned)
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"update domain {prior['name']!r}", exc, _hint(exc)) from exc

    def _differs(self, dom, planned: State) -> bool:
        """Whether a domain's definition differs from the plan (ignoring live-only settings)."""
        attrs = self.schema.attrs
        seen = project(attrs, conform(attrs, observe(dom, planned)), planned)
        return any(seen.get(k) != planned.get(k) for k in planned if k not in _LIVE_ONLY)

    @staticmethod
    def _converge(dom, planned: State, restart: bool) -> None:
        """Bring autostart and run state to the plan."""
        if planned.get("autostart") is not None and bool(dom.autostart()) != planned["autostart"]:
            dom.setAutostart(1 if planned["autostart"] else 0)
        want_running = bool(planned.get("running"))
        if _is_running(dom) and (restart or not want_running):
            _stop(dom, SHUTDOWN_TIMEOUT)
        if want_running and not _is_running(dom):
            dom.create()

    def delete(self, hv: Hypervisor, prior: State) -> None:
        import libvirt

        with hv.writing() as s:
            dom = find(s.conn, prior.get("uuid"), prior.get("name"))
            if dom is None:
                return
            try:
                if _is_running(dom):
                    dom.destroy()
                if dom.isPersistent():
                    self._undefine(dom)
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"delete domain {prior['name']!r}", exc) from exc

    @staticmethod
    def _undefine(dom) -> None:
        import libvirt

        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            # Drivers without NVRAM/checkpoint support reject those flags.
            if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT,
                                            libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
                raise
            dom.undefine()

    def read(self, hv: Hypervisor, prior: State) -> State | None:
        with hv.reading() as conn:
            dom = find(conn, prior.get("uuid"), prior.get("name"))
            return observe(dom, prior) if dom is not None else None

    def import_state(self, hv: Hypervisor, ident: str) -> State:
        with hv.reading() as conn:
            dom = find(conn, ident, ident)
            if dom is None:
                raise not_found("domain", ident)
            return observe(dom, None)


def _hint(exc: Exception) -> str:
    text = str(exc)
    if "storage pool" in text or "volume" in text:
        return "Check that the pool and volumes named in devices.disks exist (apply the shared workspace first)."
    if "emulator" in text or "machine" in text or "arch" in text:
        return "Check os.type_arch / os.type_machine and the domain `type` against `virsh capabilities`."
    return ""
