"""Request bodies validated against api/openapi.yaml, the one place their structure is declared.

Every operation with an `application/json` request body is checked by `ValidationMiddleware` before its
responder runs: types, required members, enums, lengths, refused extra members. The responders keep the
semantic checks (existence, quotas, ownership, microversion rules that need the caller). The fuzzer
(tests/api/test_fuzz.py) reads the same file and fails if the code accepts what a schema refuses.

Vendor extensions in the spec, on an operation's `application/json` media type:
- `x-microversions: [{min: "2.64", schema: {...}}, ...]`: the schema for requests at or above `min` (the
  last one matching wins); the plain `schema` is the service's minimum version, what a client without an
  OpenStack-API-Version header (the fuzzer) gets.
- `x-min-microversion: "2.54"` / `x-max-microversion: "2.56"` on a property: the member exists from (up to
  and including) that version only. Outside its range the member is refused whatever its value, named with
  the version that accepts it (`rebuild.key_name: is accepted from microversion 2.54 on`): what Nova's
  per-version schemas (one per action, keyed by the action's name) say without repeating a whole schema per
  version. A version beyond the service's maximum makes the member always refused, as Nova below it.

A new endpoint's body schema goes in the spec next to its path: nothing here changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import falcon
import jsonschema_rs
import yaml

from api.compute.microversion import NOVA
from api.errors import BadRequest
from api.http import read_json_value
from api.microversion import Microversions, Version
from api.volume.microversion import CINDER
from provisioner.excerpt import LIMIT, cut, describe

SPEC = Path(__file__).with_name("openapi.yaml")
JSON = "application/json"
SCHEMES: tuple[Microversions, ...] = (NOVA, CINDER)
MIN_KEY, MAX_KEY = "x-min-microversion", "x-max-microversion"
# Formats the spec uses that draft 4 does not define, checked as schemathesis checks them (its negative cases
# must be refused): a UUID in its 8-4-4-4-12 hex form.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
FORMATS = {"uuid": lambda text: _UUID.fullmatch(text) is not None}
# JSON Schema's names for types, as a message says them.
_TYPE_NAMES = {"object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


@dataclass(frozen=True)
class Violation:
    """Where a body breaks its schema and how; `unknown` when by a member the schema does not declare."""

    field: str
    message: str
    unknown: bool
    shown: str | None  # the offending value as a message may show it; None for a missing member


@dataclass(frozen=True)
class Compiled:
    """A schema with its $refs inlined, and its validator."""

    schema: dict[str, Any]
    validator: jsonschema_rs.Validator

    def violation(self, body: Any) -> Violation | None:
        """The first way `body` breaks the schema; None if it is valid."""
        for error in self.validator.iter_errors(body):
            return self._explain(error)
        return None

    def _explain(self, error: jsonschema_rs.ValidationError) -> Violation:
        kind = {**error.kind.as_dict(), "name": error.kind.name}
        if kind["name"] in ("oneOf", "anyOf"):
            # The alternative of the value's own type says more than "none matches" (size 0, not "matches none"):
            # the one not refusing the value itself for its type (a type error deeper down is its own message).
            here = list(error.instance_path)
            typed = [branch for branch in kind.get("context") or [] if branch
                     and not any(sub.kind.name == "type" and list(sub.instance_path) == here for sub in branch)]
            if typed:
                return self._explain(typed[0][0])
        if kind["name"] == "additionalProperties":
            kind["patterns"] = list(self._node(error).get("patternProperties", {}))
        if kind["name"] == "not":  # only a member out of its microversion range is a `not` here
            kind["range"] = {key: self._node(error).get(key) for key in (MIN_KEY, MAX_KEY)}
        member, message = _message(kind, error.instance)
        parts = list(error.instance_path) + ([member] if member is not None else [])
        shown = None if kind["name"] == "required" else describe(error.instance)
        return Violation(_path(parts), message, kind["name"] == "additionalProperties", shown)

    def _node(self, error: jsonschema_rs.ValidationError) -> dict[str, Any]:
        """The schema object holding the keyword `error` broke."""
        node: Any = self.schema
        for step in list(error.schema_path)[:-1]:
            node = node[step]
        return node


@dataclass(frozen=True)
class BodySchema:
    """One operation's request body: validators by the lowest microversion they apply from."""

    required: bool
    by_version: tuple[tuple[Version | None, Compiled], ...]  # ascending; None is the minimum

    def compiled(self, version: Version | None) -> Compiled:
        """The schema for a request at `version` (None: an unversioned service)."""
        chosen = self.by_version[0][1]
        for since, compiled in self.by_version[1:]:
            if version is not None and since is not None and version >= since:
                chosen = compiled
        return chosen

    def check(self, body: Any, version: Version | None, nova: bool = False) -> BadRequest | None:
        """The 400 for a body that breaks the schema of `version`; None if it is valid.

        A member refused as unknown that a later microversion accepts is named with that version. `nova`: in
        Nova's words for a body it refuses by its schemas (nova/api/validation/validators.py)."""
        found = self.compiled(version).violation(body)
        if found is None:
            return None
        message = found.message
        if found.unknown and version is not None:
            for since, compiled in self.by_version[1:]:
                if since is not None and since > version and compiled.validator.is_valid(body):
                    message = f"{message}: it is accepted from microversion {since} on"
                    break
        if nova:
            shown = "(missing)" if found.shown is None else found.shown
            return BadRequest("", f"Invalid input for field/attribute {found.field}. Value: {shown}. {message}")
        return BadRequest(found.field, message)


def _resolve(node: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`node` with every local $ref inlined and OpenAPI 3.0's `nullable` spelled as JSON Schema's null type."""
    if isinstance(node, list):
        return [_resolve(item, document, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"api/openapi.yaml: $ref {ref!r} is not a local, non-recursive reference")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        return _resolve(target, document, (*seen, ref))
    out = {key: _resolve(value, document, seen) for key, value in node.items()}
    if not out.pop("nullable", False):
        return out
    if isinstance(out.get("type"), str):
        # An enum decides by itself: a nullable one lists null (OpenAPI 3.0.3, and schemathesis, read it so).
        out["type"] = [out["type"], "null"]
        return out
    return {"anyOf": [out, {"type": "null"}]}  # a oneOf of types, say: null is one more alternative


def _compile(schema: Any, document: dict[str, Any], version: Version = Version(0, 0)) -> Compiled:
    resolved = _at(_resolve(schema, document), version)
    # OpenAPI 3.0's schema object is a JSON Schema draft 4 dialect (boolean exclusiveMaximum and all).
    return Compiled(resolved, jsonschema_rs.Draft4Validator(resolved, formats=FORMATS, validate_formats=True))


def _parse_version(text: str) -> Version:
    major, minor = str(text).split(".")
    return Version(int(major), int(minor))


def _bounds(node: Any) -> set[Version]:
    """Every version a property's x-min/x-max-microversion changes the schema at (x-max: the one after)."""
    if isinstance(node, list):
        return set().union(*(_bounds(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set().union(*(_bounds(value) for value in node.values()))
    if MIN_KEY in node:
        found.add(_parse_version(node[MIN_KEY]))
    if MAX_KEY in node:
        top = _parse_version(node[MAX_KEY])
        found.add(Version(top.major, top.minor + 1))
    return found


def _at(node: Any, version: Version) -> Any:
    """The resolved schema as it stands at `version`: a property outside its range refuses any value."""
    if isinstance(node, list):
        return [_at(item, version) for item in node]
    if not isinstance(node, dict):
        return node
    low, high = node.get(MIN_KEY), node.get(MAX_KEY)
    if (low is not None and version < _parse_version(low)) or (high is not None and version > _parse_version(high)):
        return {"not": {}, **{key: node[key] for key in (MIN_KEY, MAX_KEY) if key in node}}
    return {key: _at(value, version) for key, value in node.items()}


def load_schemas(spec: Path = SPEC) -> dict[tuple[str, str], BodySchema]:
    """(route template, METHOD) -> its body schema, compiled once; operations validated in code are left out."""
    # libyaml's loader when present: the spec is ~3000 lines, parsed at every server start.
    document = yaml.load(spec.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas: dict[tuple[str, str], BodySchema] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            body = operation.get("requestBody", {})
            if "$ref" in body:  # a shared one, under components/requestBodies
                body = document["components"]["requestBodies"][body["$ref"].rsplit("/", 1)[1]]
            media = body.get("content", {}).get(JSON)
            if media is None or "schema" not in media:
                continue
            versions = sorted((_parse_version(v["min"]), v["schema"]) for v in media.get("x-microversions", []))
            bounds = _bounds([_resolve(schema, document) for schema in (media["schema"], *(v for _, v in versions))])
            by_version = ((None, _compile(media["schema"], document)),
                          *((since, _compile(_schema_at(media["schema"], versions, since), document, since))
                            for since in sorted(bounds | {since for since, _ in versions})))
            schemas[(path, method.upper())] = BodySchema(bool(body.get("required")), by_version)
    return schemas


def _schema_at(plain: Any, versions: list[tuple[Version, Any]], version: Version) -> Any:
    """The x-microversions schema in force at `version` (the last whose min it reaches), else the plain one."""
    chosen = plain
    for since, schema in versions:
        if version >= since:
            chosen = schema
    return chosen


@cache
def spec_schemas() -> dict[tuple[str, str], BodySchema]:
    """api/openapi.yaml's body schemas, loaded and compiled once per process (every app built shares them)."""
    return load_schemas(SPEC)


def _path(parts: list[str | int]) -> str:
    """A field path as messages name it: `volume.metadata.key`, `server.networks[0].uuid`, `body` for the root."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if len(part) <= LIMIT and part.isprintable() else cut(part)
            text += f".{name}" if text else name
    return text or "body"


def _message(kind: dict[str, Any], value: Any) -> tuple[str | None, str]:
    """(a member to append to the path, the message) for one violation; never more of `value` than a cut."""
    name = kind["name"]
    if name == "required":
        return kind["property"], "is required"
    if name == "additionalProperties":
        member = cut(str(kind["unexpected"][0]))
        if kind["patterns"]:  # a map whose member names have a form
            return None, f"the member name {member} does not match {' or '.join(kind['patterns'])}"
        return None, f"unknown field {member}"
    if name == "type":
        types = kind["types"] if isinstance(kind["types"], list) else [kind["types"]]
        types = [t for t in types if t != "null"] or types  # a nullable member: its own type says enough
        return None, f"{describe(value)} is not {' or '.join(_TYPE_NAMES.get(t, t) for t in types)}"
    if name == "enum":
        return None, f"{describe(value)}: use one of {', '.join(str(o) for o in kind['options'] if o is not None)}"
    limits = {"maxLength": "is longer than {} characters", "minLength": "is shorter than {} characters",
              "maxItems": "has more than {} items", "minItems": "has fewer than {} items",
              "maxProperties": "has more than {} members", "minProperties": "has fewer than {} members",
              "maximum": "is above the maximum of {}", "minimum": "is below the minimum of {}",
              "exclusiveMaximum": "must be below {}", "exclusiveMinimum": "must be above {}"}
    if name in limits:
        return None, limits[name].format(kind["limit"])
    if name == "pattern":
        return None, f"{describe(value)} does not match {kind['pattern']}"
    if name == "format":
        return None, f"{describe(value)} is not a valid {kind['format']}"
    if name == "uniqueItems":
        return None, "has duplicate items"
    if name in ("oneOf", "anyOf"):
        return None, f"{describe(value)} matches none of the accepted forms"
    if name == "not" and kind.get("range"):
        low, high = kind["range"][MIN_KEY], kind["range"][MAX_KEY]
        if high is None:
            return None, f"is accepted from microversion {low} on"
        return None, (f"is accepted up to microversion {high} only" if low is None
                      else f"is accepted from microversion {low} up to {high}")
    return None, f"is not valid ({name})"


class ValidationMiddleware:
    """Validates the parsed JSON body of a routed request against its operation's schema before the responder.

    The body is read once here (api/http.read_json_value, which keeps the size and depth bounds) and left on
    `req.context` for the responder's own read_json call.
    """

    def __init__(self, schemas: dict[tuple[str, str], BodySchema], max_bytes: int):
        self.schemas = schemas
        self.max_bytes = max_bytes

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        """falcon hook: runs after routing (and the auth middleware), before the responder."""
        if resource is None:
            return
        schema = self.schemas.get((req.uri_template, req.method))
        if schema is None:
            return
        body = read_json_value(req, self.max_bytes)
        if body is None and not schema.required:
            return
        error = schema.check(body, _version(req), NOVA.applies_to(req.path))
        if error is not None:
            raise error


def _version(req: falcon.Request) -> Version | None:
    """The microversion the request settled on, for the services that have them."""
    for scheme in SCHEMES:
        if scheme.applies_to(req.path):
            return scheme.version_of(req)
    return None
