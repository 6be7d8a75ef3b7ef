"""The Jinja2 templates in templates/, which a domain's own templates/ folder may override."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import jinja2

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def environment(override_dir: Path | None, filters: dict[str, Callable[[Any], str]],
                **options: Any) -> jinja2.Environment:
    """A strict environment (undefined names fail) searching `override_dir` first.

    Nothing is auto-escaped: each template quotes values with the filter that
    fits its language (`hcl`, `sh`).
    """
    search = [str(override_dir)] if override_dir and override_dir.is_dir() else []
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search + [str(TEMPLATES)]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False, **options)
    env.filters.update(filters)
    return env
