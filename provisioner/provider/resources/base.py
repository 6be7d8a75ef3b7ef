"""What every resource implements, and the planning they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import Diagnostic, ProviderError, libvirt_failure
from ..hypervisor import Hypervisor
from ..schema import ResourceSchema, replace_paths, unknown_computed, unknown_volatile

State = dict[str, Any]


@dataclass
class Plan:
    """PlanResourceChange's answer."""

    planned: State | None
    requires_replace: list[tuple[str, ...]]


class Resource:
    """A Terraform resource type mapped onto libvirt objects.

    Subclasses define `schema` and the CRUD methods; values are conformed to
    the schema by the protocol layer, so methods may return partial dicts.
    """

    schema: ResourceSchema

    @property
    def type_name(self) -> str:
        """Terraform resource type name."""
        return self.schema.type_name

    # -- planning ----------------------------------------------------------------
    def validate(self, config: State) -> list[Diagnostic]:
        """Static checks of a configuration (values may be unknown)."""
        return []

    def plan(self, prior: State | None, proposed: State | None, config: State | None) -> Plan:
        """Plan a change. Create: computed members the config leaves null are
        unknown. Update: no-op when nothing the user controls changed;
        otherwise replace-flagged attributes force a replacement and volatile
        computed members become unknown."""
        if proposed is None:
            return Plan(None, [])
        attrs = self.schema.attrs
        if prior is None:
            return Plan(self.adjust_create_plan(unknown_computed(attrs, proposed, config), config), [])
        if proposed == prior:
            return Plan(prior, [])
        replace = self.requires_replace(prior, proposed)
        if replace:
            # Terraform plans the create half of the replacement separately,
            # with a null prior state.
            return Plan(proposed, replace)
        return Plan(unknown_volatile(attrs, proposed), [])

    def adjust_create_plan(self, planned: State, config: State | None) -> State:
        """Hook: fill in computed values known before apply."""
        return planned

    def requires_replace(self, prior: State, planned: State) -> list[tuple[str, ...]]:
        """Paths whose change forces replacement."""
        return replace_paths(self.schema.attrs, prior, planned)

    # -- lifecycle ---------------------------------------------------------------
    def create(self, hv: Hypervisor, planned: State) -> State:
        """Create the object; return its observed state."""
        raise NotImplementedError

    def update(self, hv: Hypervisor, prior: State, planned: State) -> State:
        """Update in place; return the observed state."""
        raise ProviderError(f"{self.type_name} cannot be updated in place",
                            "This is a provider bug: the change should have planned a replacement.")

    def delete(self, hv: Hypervisor, prior: State) -> None:
        """Delete the object (absent already is fine)."""
        raise NotImplementedError

    def read(self, hv: Hypervisor, prior: State) -> State | None:
        """Observed state shaped like `prior`, or None when the object is gone."""
        raise NotImplementedError

    def import_state(self, hv: Hypervisor, ident: str) -> State:
        """Observed state of an existing object named by `ident`."""
        raise NotImplementedError


def not_found(kind: str, ident: str, hint: str = "") -> ProviderError:
    """The error for an import or reference to a missing object."""
    return ProviderError(f"Cannot find {kind} {ident!r}", hint or f"No {kind} with that name or UUID exists.")


def lookup_first(*attempts: tuple[Callable[[str], Any], str | None]) -> Any | None:
    """The object the first (lookup, key) pair finds, skipping empty keys; None if none does."""
    import libvirt

    for lookup, key in attempts:
        if not key:
            continue
        try:
            return lookup(key)
        except libvirt.libvirtError:
            continue
    return None


class DefinedObjectResource(Resource):
    """Pools and networks: found by UUID or name, stopped and undefined alike.

    Subclasses set `noun` and the `find(conn, uuid, name)` and `observe(obj)`
    functions of their module.
    """

    noun: str
    find: Callable[[Any, str | None, str | None], Any]
    observe: Callable[[Any], State]

    def delete(self, hv: Hypervisor, prior: State) -> None:
        import libvirt

        with hv.writing() as s:
            obj = self.find(s.conn, prior.get("uuid"), prior.get("name"))
            if obj is None:
                return
            try:
                if obj.isActive():
                    obj.destroy()
                obj.undefine()
            except libvirt.libvirtError as exc:
                raise libvirt_failure(f"delete {self.noun} {prior['name']!r}", exc) from exc

    def read(self, hv: Hypervisor, prior: State) -> State | None:
        with hv.reading() as conn:
            obj = self.find(conn, prior.get("uuid"), prior.get("name"))
            return self.observe(obj) if obj is not None else None

    def import_state(self, hv: Hypervisor, ident: str) -> State:
        with hv.reading() as conn:
            obj = self.find(conn, ident, ident)
            if obj is None:
                raise not_found(self.noun, ident)
            return self.observe(obj)
