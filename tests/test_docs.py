"""README documents every provision.conf key with its real default."""

from __future__ import annotations

import re

from conftest import REPO
from provisioner.spec.conf import KEYS


def test_readme_documents_every_key_with_its_default() -> None:
    readme = (REPO / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", readme, re.M))
    assert set(rows) == {key.name for key in KEYS}
    for key in KEYS:
        default = key.default
        if isinstance(default, bool):
            expected = "`yes`" if default else "`no`"
        elif default is None or default in ("", [], {}):
            expected = "—"
        else:
            expected = f"`{default}`"
        assert rows[key.name].strip() == expected, key.name


def test_readme_starts_with_run_and_test() -> None:
    commands = re.findall(r"^make (\w+)", (REPO / "README.md").read_text(), re.M)
    assert commands[:2] == ["run", "test"]
    assert "make test" in (REPO / ".ci/run").read_text()
