"""Nova's `GET /servers?name=` regular expression, matched in time linear in the name.

Nova hands the pattern to its database's REGEXP; Python's backtracking `re` would let one request such
as `name=(a+)+$` or `name=a*a*a*a*a*a*b` hold a worker's interpreter for hours. So the pattern is
compiled here into a small automaton and run as a set of states (Thompson's construction), for the
subset clients send: literal characters, `\\`-escapes, `.`, bracket classes (`[a-z0-9_]`, `[^.]`),
`^` and `$` anchors, and `*`, `+`, `?` after one of those. Any other pattern (groups, alternation,
`{m,n}`, back-references) and a malformed one match as a literal substring, as an invalid pattern
always did here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Predicate = Callable[[str], bool]
_UNSUPPORTED = set("()|{}")


class _Literal(Exception):
    """The pattern is outside the supported subset: match it literally."""


@dataclass(frozen=True)
class _Step:
    """One atom of the pattern and how often it may occur."""

    matches: Predicate
    repeat: str  # "" once, "?" optional, "*" any number, "+" one or more


def _literal(char: str) -> _Step:
    """A step matching exactly `char`, once."""
    return _Step(lambda c: c == char, "")


def _bracket(pattern: str, start: int) -> tuple[Predicate, int]:
    """The class starting after '[' at `start`; returns its predicate and the index after ']'."""
    i, negate = start, pattern.startswith("^", start)
    if negate:
        i += 1
    items: list[tuple[str, str]] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        first = False
        low = pattern[i + 1] if pattern[i] == "\\" and i + 1 < len(pattern) else pattern[i]
        i += 2 if pattern[i] == "\\" else 1
        high = low
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            high = pattern[i + 2] if pattern[i + 1] == "\\" and i + 2 < len(pattern) else pattern[i + 1]
            i += 3 if pattern[i + 1] == "\\" else 2
        if high < low:
            raise _Literal
        items.append((low, high))
    if i >= len(pattern):
        raise _Literal
    return (lambda c: any(lo <= c <= hi for lo, hi in items) != negate), i + 1


def _compile(pattern: str) -> tuple[list[_Step], bool, bool]:
    """The steps of `pattern`, and whether it is anchored at the start and at the end."""
    start = pattern.startswith("^")
    escapes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))  # backslashes before a final '$'
    end = pattern.endswith("$") and escapes % 2 == 0 and len(pattern) > int(start)
    body = pattern[int(start):len(pattern) - int(end)]
    steps: list[_Step] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char in _UNSUPPORTED or char in "^$":
            raise _Literal
        if char in "*+?":
            if not steps or steps[-1].repeat:
                raise _Literal  # nothing to repeat, or a repeat of a repeat
            steps[-1] = _Step(steps[-1].matches, char)
            i += 1
            continue
        if char == "\\":
            if i + 1 >= len(body) or body[i + 1].isalnum():
                raise _Literal  # \d, \w, \1 …: not in the subset
            steps.append(_literal(body[i + 1]))
            i += 2
        elif char == "[":
            matches, i = _bracket(body, i + 1)
            steps.append(_Step(matches, ""))
        elif char == ".":
            steps.append(_Step(lambda c: c != "\n", ""))
            i += 1
        else:
            steps.append(_literal(char))
            i += 1
    return steps, start, end


class NameFilter:
    """`NameFilter(pattern).search(name)`: does the pattern match anywhere in the name (as `re.search`)?"""

    def __init__(self, pattern: str):
        try:
            self._steps, self._start, self._end = _compile(pattern)
        except _Literal:
            self._steps, self._start, self._end = [_literal(char) for char in pattern], False, False

    def _closure(self, states: set[int]) -> set[int]:
        """Add the states reachable by skipping optional steps."""
        todo = list(states)
        while todo:
            state = todo.pop()
            if state < len(self._steps) and self._steps[state].repeat in ("?", "*"):
                if state + 1 not in states:
                    states.add(state + 1)
                    todo.append(state + 1)
        return states

    def search(self, name: str) -> bool:
        """True if the pattern matches somewhere in `name`; time O(len(name) × len(pattern))."""
        final = len(self._steps)
        states = self._closure({0})
        for char in name:
            if final in states and not self._end:
                return True
            following: set[int] = set()
            for state in states:
                if state == final:
                    continue
                step = self._steps[state]
                if step.matches(char):
                    following.add(state + 1)
                    if step.repeat in ("*", "+"):
                        following.add(state)  # the same step may match again
            if not self._start:
                following.add(0)  # an unanchored search may begin at any character
            states = self._closure(following)
        return final in states
