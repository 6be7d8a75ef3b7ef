"""The one YAML loader for text a tenant, a domain directory or an admin writes: bounded, alias-free.

PyYAML's safe_load expands anchors and aliases into shared objects: a few
hundred bytes of nested aliases become gigabytes once anything walks,
serialises or repr()s the result. This loader refuses anchors and aliases,
explicit tags beyond the plain core types, input over a size bound and
nesting over a depth bound, each with the line and column where it starts.
Nothing in the problem text echoes the input beyond a short cut.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent, ScalarEvent

from provisioner.excerpt import cut

MAX_CHARS = 1 << 20  # callers may read with a smaller bound (user_data: Nova's 64 KiB)
MAX_DEPTH = 32  # cloud-config users nest 4 deep, config.yaml 6
MAX_INT = 2**64 - 1  # uids, sizes, seconds: nothing read here needs more
MAX_PROBLEM = 120  # PyYAML's problem texts quote a character or a token: keep them short
# Explicit tags that only say what the plain form means anyway; any other (!!binary, !!set,
# !!python/..., local !tags) names a type nobody here reads.
CORE_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))


class YamlError(ValueError):
    """YAML refused or malformed; `line` and `column` (1-based) say where, when known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        self.problem = problem
        self.line = line
        self.column = column
        super().__init__(f"line {line}, column {column}: {problem}" if line else problem)

    def located(self, name: str) -> str:
        """`name:LINE:COLUMN` (a file's name, compiler style), or `name` when the place is unknown."""
        return f"{name}:{self.line}:{self.column}" if self.line else name


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader composing nodes only after checking each event's anchor, tag and depth."""

    def __init__(self, text: str, max_depth: int):
        super().__init__(text)
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _at(event, "YAML aliases (*name) are not accepted: write the value out")
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise _at(event, "YAML anchors (&name) are not accepted: write the value out")
        if _explicit_tag(event) not in (None, *CORE_TAGS):
            raise _at(event, f"YAML tag {cut(str(event.tag))} is not accepted: use plain values")
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= self._max_depth:
            raise _at(event, f"malformed YAML: nested too deeply (more than {self._max_depth} levels)")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: Any) -> int:
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # over 4300 decimal digits
            value = None
        # 0xfff… of 5000 digits loads, and then str() of it raises
        if value is None or abs(value) > MAX_INT:
            raise _at(node, "malformed YAML: the integer is out of range (64 bits)")
        return value

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except YamlError:
            raise
        except ValueError:  # a date like 2030-13-45
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise _at(node, f"malformed YAML: the {kind} value cannot be read") from None


# The constructor table holds SafeConstructor's own function: point the int tag at the bounded one.
_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _explicit_tag(event: Any) -> str | None:
    """The tag written in the text (None when the parser resolves the node's type itself)."""
    if isinstance(event, ScalarEvent):
        return None if event.tag is None or event.implicit[0] else event.tag
    if isinstance(event, CollectionStartEvent):
        return None if event.tag is None or event.implicit else event.tag
    return None


def _at(item: Any, problem: str) -> YamlError:
    """YamlError at where an event or a node starts."""
    mark = item.start_mark
    return YamlError(problem, mark.line + 1, mark.column + 1)


def load(text: str, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """The single YAML document in `text` (None if empty), or YamlError naming line and column."""
    if len(text) > max_chars:
        raise YamlError(f"is longer than {max_chars} characters")
    try:
        loader = _BoundedLoader(text, max_depth)  # its reader already refuses unprintable characters
    except yaml.reader.ReaderError as exc:
        raise _unprintable(text, exc) from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "not YAML"
        mark = exc.problem_mark or exc.context_mark
        raise _malformed(problem, mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.YAMLError:
        raise YamlError("malformed YAML") from None
    finally:
        loader.dispose()


def _malformed(problem: str, line: int | None, column: int | None) -> YamlError:
    short = problem if len(problem) <= MAX_PROBLEM else problem[:MAX_PROBLEM] + "…"
    return YamlError(f"malformed YAML: {short}", line, column)


def _unprintable(text: str, exc: yaml.reader.ReaderError) -> YamlError:
    """A character YAML does not allow (a control character, a lone surrogate), by line and column."""
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    return _malformed(f"character #x{exc.character:04x} is not allowed", line, column)

