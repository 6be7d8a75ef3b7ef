"""Reading an input file as text, with errors that name it."""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import InputError


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; InputError naming the file if missing or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from None
