"""Resource schemas as plain data, and the value operations Terraform needs.

A schema is a tuple of `Attr`. An attribute either has a primitive cty type
("string", "number", "bool", or ("list", "string")) or is a protocol-6 *nested
attribute* (`nested` set, nesting "single" or "list"), exactly as the upstream
`dmacvicar/libvirt` 0.9.7 provider declares them.

Values travel as plain Python data: dict for objects, list for lists, None for
null, and the `UNKNOWN` sentinel for values not known until apply. Every
function here is pure and schema-driven so that the protocol layer and the
resource mappings never hand-walk nested structures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


class _Unknown:
    """The cty unknown value (msgpack extension 0)."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        # An unknown value is never "set" for our purposes: refuse silent
        # truthiness bugs by making it falsy like null.
        return False


UNKNOWN = _Unknown()

SINGLE = "single"
LIST = "list"


@dataclass(frozen=True)
class Nested:
    """The object type of a nested attribute and how it nests."""

    mode: str
    attrs: tuple["Attr", ...]


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource or of a nested object.

    `replace` marks attributes whose change requires destroying and
    re-creating the object (Terraform's RequiresReplace plan modifier).
    `volatile` marks computed attributes that may change whenever the object
    is updated in place (they are planned unknown on update).
    """

    name: str
    type: Any = None
    required: bool = False
    optional: bool = False
    computed: bool = False
    description: str = ""
    nested: Nested | None = None
    replace: bool = False
    volatile: bool = False

    @property
    def computed_only(self) -> bool:
        """True for Read-Only attributes (computed and not settable)."""
        return self.computed and not self.optional and not self.required


Schema = tuple[Attr, ...]


# -- small constructors used by the resource modules --------------------------

def required(name: str, type_: Any, doc: str = "", **kw: Any) -> Attr:
    """A required primitive attribute."""
    return Attr(name, type_, required=True, description=doc, **kw)


def optional(name: str, type_: Any, doc: str = "", **kw: Any) -> Attr:
    """An optional primitive attribute."""
    return Attr(name, type_, optional=True, description=doc, **kw)


def computed(name: str, type_: Any, doc: str = "", **kw: Any) -> Attr:
    """A Read-Only (computed) primitive attribute."""
    return Attr(name, type_, computed=True, description=doc, **kw)


def single(name: str, *attrs: Attr, doc: str = "", required_: bool = False, **kw: Any) -> Attr:
    """A nested attribute holding one object ("(Attributes)" in the docs)."""
    return Attr(name, None, required=required_, optional=not required_, description=doc,
                nested=Nested(SINGLE, tuple(attrs)), **kw)


def many(name: str, *attrs: Attr, doc: str = "", **kw: Any) -> Attr:
    """An optional nested attribute holding a list of objects ("(Attributes List)")."""
    return Attr(name, None, optional=True, description=doc, nested=Nested(LIST, tuple(attrs)), **kw)


# -- value operations -----------------------------------------------------------

def conform(attrs: Schema, value: Any) -> Any:
    """Return `value` with exactly the declared members, recursively.

    Terraform rejects objects with a missing or an extra member, so every
    value leaving the provider goes through here: absent members become
    null, undeclared keys are dropped, numbers become int where integral.
    """
    if value is None or value is UNKNOWN:
        return value
    out: dict[str, Any] = {}
    for a in attrs:
        v = value.get(a.name) if isinstance(value, dict) else None
        out[a.name] = _conform_attr(a, v)
    return out


def _conform_attr(a: Attr, v: Any) -> Any:
    if v is None or v is UNKNOWN:
        return v
    if a.nested is None:
        return _conform_primitive(a.type, v)
    if a.nested.mode == SINGLE:
        return conform(a.nested.attrs, v)
    return [conform(a.nested.attrs, item) for item in v]


def _conform_primitive(type_: Any, v: Any) -> Any:
    if type_ == "number":
        if isinstance(v, str):
            v = float(v) if any(c in v for c in ".eE") else int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v
    if type_ == "bool":
        return bool(v)
    if type_ == "string":
        return str(v)
    if isinstance(type_, (list, tuple)) and type_[0] == "list":
        return [_conform_primitive(type_[1], x) for x in v]
    return v


def is_known(value: Any) -> bool:
    """True when `value` contains no unknown anywhere."""
    if value is UNKNOWN:
        return False
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    return True


def unknown_computed(attrs: Schema, planned: Any, config: Any,
                     keep: Callable[[tuple[str, ...]], bool] | None = None,
                     _path: tuple[str, ...] = ()) -> Any:
    """Plan for create: computed members that config leaves null become unknown.

    Nested computed members are only marked inside objects that exist in the
    plan (a null `target` has no `target.path`). `keep(path)` lets a resource
    keep a value it can predict.
    """
    if planned is None or planned is UNKNOWN:
        return planned
    out = dict(planned)
    cfg = config if isinstance(config, dict) else {}
    for a in attrs:
        path = _path + (a.name,)
        cv = cfg.get(a.name)
        if a.computed and cv is None and not (keep and keep(path)):
            if a.computed_only or out.get(a.name) is None:
                out[a.name] = UNKNOWN
                continue
        if a.nested is None or out.get(a.name) in (None, UNKNOWN):
            continue
        if a.nested.mode == SINGLE:
            out[a.name] = unknown_computed(a.nested.attrs, out[a.name], cv, keep, path)
        else:
            cv_list = cv if isinstance(cv, list) else []
            out[a.name] = [
                unknown_computed(a.nested.attrs, item, cv_list[i] if i < len(cv_list) else None, keep, path)
                for i, item in enumerate(out[a.name])
            ]
    return out


def unknown_volatile(attrs: Schema, planned: dict[str, Any]) -> dict[str, Any]:
    """Plan for an in-place update: volatile computed members become unknown."""
    out = dict(planned)
    for a in attrs:
        if a.volatile:
            out[a.name] = UNKNOWN
    return out


def strip_computed_only(attrs: Schema, value: Any) -> Any:
    """The part of a value the user controls (computed-only members nulled)."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for a in attrs:
        v = value.get(a.name)
        if a.computed_only:
            out[a.name] = None
        elif a.nested is None or v in (None, UNKNOWN):
            out[a.name] = v
        elif a.nested.mode == SINGLE:
            out[a.name] = strip_computed_only(a.nested.attrs, v)
        else:
            out[a.name] = [strip_computed_only(a.nested.attrs, x) for x in v]
    return out


def replace_paths(attrs: Schema, prior: dict[str, Any], planned: dict[str, Any]) -> list[tuple[str, ...]]:
    """Paths of `replace` attributes whose planned value differs from prior.

    Only top-level attributes carry the replace flag; comparing whole nested
    values (minus computed-only members) is what upstream's RequiresReplace
    on an object attribute does.
    """
    paths = []
    for a in attrs:
        if not a.replace:
            continue
        before = strip_computed_only(a.nested.attrs, prior.get(a.name)) if a.nested and a.nested.mode == SINGLE \
            else prior.get(a.name)
        after = strip_computed_only(a.nested.attrs, planned.get(a.name)) if a.nested and a.nested.mode == SINGLE \
            else planned.get(a.name)
        if before != after:
            paths.append((a.name,))
    return paths


def fill_unknowns(planned: Any, actual: Any) -> Any:
    """Apply result: the plan with every unknown replaced by the actual value."""
    if planned is UNKNOWN:
        return actual
    if isinstance(planned, dict):
        act = actual if isinstance(actual, dict) else {}
        return {k: fill_unknowns(v, act.get(k)) for k, v in planned.items()}
    if isinstance(planned, list):
        act = actual if isinstance(actual, list) else []
        return [fill_unknowns(v, act[i] if i < len(act) else None) for i, v in enumerate(planned)]
    return planned


def project(attrs: Schema, observed: Any, prior: Any) -> Any:
    """Read result shaped like the prior state.

    libvirt fills in defaults the user never wrote (a console for every
    serial port, a VNC port of -1, …). An optional member that is null in the
    prior state stays null, so those defaults never show up as a diff; every
    member the user did set, and every computed member, reports what libvirt
    holds, so real drift does show. List elements beyond the prior ones (a
    device added behind Terraform's back) are reported as observed.
    """
    if prior is None or observed is None or not isinstance(prior, dict):
        return observed
    out: dict[str, Any] = {}
    for a in attrs:
        obs, pri = observed.get(a.name), prior.get(a.name)
        if a.computed_only:
            out[a.name] = obs
        elif a.computed:
            # Optional+computed: libvirt's value wins, the user's when unseen.
            out[a.name] = pri if obs is None else obs
        elif pri is None:
            out[a.name] = None
        elif a.nested is None or obs is None:
            out[a.name] = obs
        elif a.nested.mode == SINGLE:
            out[a.name] = project(a.nested.attrs, obs, pri)
        else:
            out[a.name] = [project(a.nested.attrs, o, pri[i] if i < len(pri) else None)
                           for i, o in enumerate(obs)]
    return out


def walk(attrs: Schema, _prefix: str = "") -> Iterator[tuple[str, Attr]]:
    """Yield (dotted path, attribute) for every attribute, depth first."""
    for a in attrs:
        path = f"{_prefix}{a.name}"
        yield path, a
        if a.nested is not None:
            yield from walk(a.nested.attrs, path + ".")


# -- protocol encoding ------------------------------------------------------------

def to_proto(attrs: Schema, pb: Any, version: int = 0, description: str = "") -> Any:
    """Encode a schema as a tfplugin6 `Schema` message."""
    return pb.Schema(version=version, block=pb.Schema.Block(
        attributes=[_attr_proto(a, pb) for a in attrs], description=description))


def _attr_proto(a: Attr, pb: Any) -> Any:
    kw: dict[str, Any] = dict(name=a.name, description=a.description, required=a.required,
                              optional=a.optional, computed=a.computed)
    if a.nested is None:
        kw["type"] = json.dumps(list(a.type) if isinstance(a.type, tuple) else a.type).encode()
    else:
        mode = pb.Schema.Object.SINGLE if a.nested.mode == SINGLE else pb.Schema.Object.LIST
        kw["nested_type"] = pb.Schema.Object(attributes=[_attr_proto(x, pb) for x in a.nested.attrs],
                                             nesting=mode)
    return pb.Schema.Attribute(**kw)


@dataclass
class ResourceSchema:
    """A resource type's schema plus its version."""

    type_name: str
    attrs: Schema
    description: str = ""
    version: int = 0
    paths: dict[str, Attr] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.paths = dict(walk(self.attrs))
