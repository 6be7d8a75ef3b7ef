"""Nova's server name filter: the same answers as `re.search` on the supported subset, linear time on any."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.compute.name_filter import NameFilter

ROOT = Path(__file__).resolve().parents[2]

ATOMS = st.sampled_from(["a", "b", "-", ".", r"\.", r"\*", "[ab]", "[^a]", "[a-c]", "[]a]", "[-a]"])
PATTERNS = st.builds(
    lambda start, steps, end: ("^" if start else "") + "".join(steps) + ("$" if end else ""),
    st.booleans(), st.lists(st.tuples(ATOMS, st.sampled_from(["", "*", "+", "?"])).map("".join), max_size=6),
    st.booleans())


@settings(max_examples=400, deadline=None)
@given(pattern=PATTERNS, name=st.text(alphabet="abc.-*]", max_size=8))
def test_same_answer_as_re_search(pattern: str, name: str) -> None:
    assert NameFilter(pattern).search(name) == bool(re.search(pattern, name)), (pattern, name)


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("vm", "my-vm-1", True),
    ("^vm-[0-9]+$", "vm-12", True),
    ("^vm-[0-9]+$", "vm-12x", False),
    ("^$", "", True),
    (r"a\$", "a$", True),
    (r"a\\$", "a\\", True),
    # Outside the subset: a literal substring, as an invalid pattern always matched.
    ("(web|db)", "x(web|db)y", True),
    ("(web|db)", "web", False),
    ("a{2}", "aa", False),
    (r"\d", "1", False),
    ("[z-a]", "[z-a]", True),
    ("[ab", "x[ab", True),
    ("a**", "a**", True),
])
def test_examples(pattern: str, name: str, expected: bool) -> None:
    assert NameFilter(pattern).search(name) is expected


def test_hostile_patterns_finish() -> None:
    # Each of these backtracks for hours in `re` on a 255-character name (a worker's interpreter held). A
    # child process bounds the run, so a regression fails here instead of hanging the suite.
    script = (
        "from api.compute.name_filter import NameFilter\n"
        "name = 'a' * 254 + '!'\n"
        "for pattern in ['(a+)+$', 'a*a*a*a*a*a*a*a*a*a*b', '.*.*.*.*.*.*.*.*=', '^(a|aa)*$']:\n"
        "    print(NameFilter(pattern).search(name))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"] * 4
