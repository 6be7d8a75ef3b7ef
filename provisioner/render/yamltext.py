"""YAML output that round-trips every value literally."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (keys, scripts) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and all(c == "\n" or c >= " " for c in value) and not value.endswith((" ", "\n\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(data: Any, header: str = "") -> str:
    """Serialise `data` deterministically (insertion order kept, no line folding).

    PyYAML's safe representer quotes any string that would read back as another
    type (e.g. an all-decimal MAC, which YAML 1.1 reads as a base-60 integer).
    """
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 20)
    return header + body
