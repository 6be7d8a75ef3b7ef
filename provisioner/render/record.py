"""Whether a workspace's last render still holds, decided without rendering.

A render is a pure function of its values (a domain's spec, keys, root and
pool; a hypervisor's shared plan's images), the templates (built-in and a
domain's own), the renderer's code and the libraries it runs on. After each
render, render.json in the workspace keeps a digest of those inputs and one
of every file the render wrote. When both match again, `provision` skips the
render, and with it importing Jinja2, pycdlib and the cloud-init writers
(most of a no-op re-apply's own time). Written files and templates are
compared by content; code by path, size and modification time, as make and
Python's bytecode cache do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import sys
from dataclasses import astuple
from pathlib import Path
from typing import Iterable

from provisioner.keys import DomainKeys
from provisioner.spec.model import DomainSpec
from provisioner.template_sources import MAX_TEMPLATE_BYTES, OVERRIDE_DIR, OVERRIDES_ENV, TEMPLATES
from provisioner.workspace import Artifact, write_atomic

RECORD = "render.json"
# The libraries whose output is part of a render (the plan's text, the seed's bytes, the documents' YAML).
_LIBRARIES = ("jinja2", "markupsafe", "pycdlib", "yaml")
_MAX_ENTRIES = 4096


def domain_digest(spec: DomainSpec, keys: DomainKeys, root: Path, pool: Path) -> str:
    """A digest of everything render_domain reads for this spec."""
    keys_text = json.dumps(astuple(keys), sort_keys=True, default=str)
    overrides = spec.input_dir / OVERRIDE_DIR if spec.input_dir is not None else None
    return digest(json.dumps(spec.to_json(), sort_keys=True), keys_text, str(root), str(pool), overrides=overrides)


def digest(*values: str, overrides: Path | None = None) -> str:
    """A digest of a render's `values`, the templates (with a domain's `overrides` folder) and the renderer's code."""
    out = hashlib.sha256()
    for value in (sys.version, os.environ.get(OVERRIDES_ENV, ""), *values):
        out.update(value.encode() + b"\0")
    code = [Path(__file__).parent, Path(__file__).parents[1] / "templates.py"]
    code += [Path(origin) for origin in map(_origin, _LIBRARIES) if origin is not None]
    templates = [TEMPLATES] if overrides is None else [TEMPLATES, overrides]
    for path, by_content in [(p, False) for p in code] + [(p, True) for p in templates]:
        for entry in _files(path, by_content):
            out.update(entry.encode() + b"\0")
    return out.hexdigest()


def holds(directory: Path, wanted: str) -> bool:
    """True if the last render into `directory` was made from `wanted` and its files are as that render wrote them."""
    try:
        record = json.loads((directory / RECORD).read_text())
        if record.get("input") != wanted or not record.get("files"):
            return False
        for name, expected in record["files"].items():
            path = directory / name
            if (path.stat().st_mode & 0o777) != expected["mode"] or _sha256(path.read_bytes()) != expected["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # no record, an old or damaged one, a file gone: render again
    return True


def write(directory: Path, made_from: str, artifacts: Iterable[Artifact]) -> None:
    """Record a render into `directory`, made from the digest `made_from`, that wrote `artifacts`."""
    files = {a.path: {"sha256": _sha256(a.content), "mode": a.mode} for a in artifacts}
    record = {"input": made_from, "files": files}
    write_atomic(directory / RECORD, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def _origin(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    return None if spec is None or spec.origin is None else str(Path(spec.origin).parent)


def _files(path: Path, by_content: bool) -> list[str]:
    """`path` and every file under it (links followed), each as 'path size mtime', or 'path sha256' `by_content`.

    Templates go by content: two edits within one tick of the file system's
    clock may leave size and time alike. Bounded: a domain's templates/
    folder was already refused past MAX_TEMPLATE_FILES entries
    (check_override_dir), a file past MAX_TEMPLATE_BYTES or not a regular file
    (a FIFO would block) counts by stat (its render is refused anyway), and
    a link loop ends at _MAX_ENTRIES.
    """
    out: list[str] = []
    pending = [path]
    for _ in range(_MAX_ENTRIES):
        if not pending:
            break
        entry = pending.pop()
        try:
            info = entry.stat()
            if entry.is_dir():
                pending.extend(sorted((e for e in entry.iterdir() if e.name != "__pycache__"), reverse=True))
                continue
            if by_content and stat.S_ISREG(info.st_mode) and info.st_size <= MAX_TEMPLATE_BYTES:
                out.append(f"{entry} {_sha256(entry.read_bytes())}")
                continue
        except OSError:
            continue  # a dangling link or an entry gone: render reports it
        out.append(f"{entry} {info.st_size} {info.st_mtime_ns}")
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
