"""Where templates come from: the built-in templates/ folder and a domain's own templates/ folder.

Apart from provisioner.templates (the Jinja2 environments), so that loading
a domain and deciding whether its last render still holds import no Jinja2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from provisioner.errors import InputError, ProvisionError
from provisioner.spec.text import is_inside, resolved

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
OVERRIDE_DIR = "templates"
OVERRIDES_ENV = "PROVISION_TEMPLATE_OVERRIDES"
"""`no` refuses every domain's templates/ folder (an override can still name host paths in libvirt objects)."""
MAX_TEMPLATE_BYTES = 256 * 1024
"""Cap on one override template file."""
MAX_TEMPLATE_FILES = 256
"""Cap on the entries under a domain's templates/ folder."""


def overrides_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """False when the operator set PROVISION_TEMPLATE_OVERRIDES=no: a domain's templates/ folder is then refused."""
    raw = (os.environ if environ is None else environ).get(OVERRIDES_ENV, "yes").strip().lower()
    if raw not in ("yes", "no", ""):
        raise ProvisionError(f"{OVERRIDES_ENV}: use yes or no")
    return raw != "no"


def check_override_dir(domain_dir: Path) -> None:
    """InputError naming the entry if the domain's templates/ folder, or anything in it, leads outside `domain_dir`.

    The loader checks each file again when it reads it; this check fails
    early, before anything is written.
    """
    folder = domain_dir / OVERRIDE_DIR
    if not folder.exists() and not folder.is_symlink():
        return
    if not overrides_allowed():
        raise InputError(str(folder), f"template overrides are turned off on this host ({OVERRIDES_ENV}=no)")
    inside = [domain_dir.resolve()]
    entries = [folder]
    count = 0
    while entries:
        entry = entries.pop()
        count += 1
        if count > MAX_TEMPLATE_FILES:
            raise InputError(str(folder), f"more than {MAX_TEMPLATE_FILES} entries: refused")
        if not is_inside(resolved(entry), inside):
            raise InputError(str(entry), "resolves outside the domain directory (through a symlink): refused")
        if entry.is_dir():
            entries.extend(sorted(entry.iterdir()))
