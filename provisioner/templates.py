"""The Jinja2 templates in templates/, which a domain's own templates/ folder may override.

The built-in templates are trusted. A domain's overrides are not: a domain
directory is written by the site's owner, and the engine runs as root. With a
`templates/` folder the whole environment is a sandbox: no `__class__`-style
attribute walks, no calls of anything but the methods of plain values (str,
int, list, dict…) and Jinja's own helpers (so no `spec.input_dir.read_text()`),
bounded `*`/`**` and output, and every override file read from inside the
domain directory (a symlink leading out is refused). Any failure in a template
is an InputError naming the template and line.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Callable

import jinja2
from jinja2.debug import rewrite_traceback_stack
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from provisioner.errors import InputError
from provisioner.spec.text import read_bytes
from provisioner.template_sources import MAX_TEMPLATE_BYTES, OVERRIDE_DIR, TEMPLATES

MAX_OUTPUT_CHARS = 4 * 1024 * 1024
"""Cap on what one sandboxed template (or macro, or block) renders."""
_MAX_POWER_BITS = 4096
_PURE_TYPES = (str, int, float, bool, tuple, list, dict, type(None))


class OverrideLoader(jinja2.BaseLoader):
    """Templates from a domain's templates/ folder, each read only from inside the domain directory."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.folder.joinpath(*split_template_path(template))  # refuses '..'
        if not path.exists() and not path.is_symlink():
            raise jinja2.TemplateNotFound(template)
        data = read_bytes(path, MAX_TEMPLATE_BYTES, [self.folder.parent])
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from None
        return source, str(path), lambda: False


def _bounded_concat(pieces: Any) -> str:
    out, total = [], 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_OUTPUT_CHARS:
            raise SecurityError(f"renders more than {MAX_OUTPUT_CHARS} characters")
        out.append(piece)
    return "".join(out)


def _jinja_object(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "jinja2"


class OverrideSandbox(ImmutableSandboxedEnvironment):
    """The sandbox override templates render in (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**"})
    concat = staticmethod(_bounded_concat)

    def is_safe_callable(self, obj: Any) -> bool:
        if not super().is_safe_callable(obj):
            return False
        if isinstance(obj, (types.MethodType, types.BuiltinMethodType)):
            owner = obj.__self__
            return isinstance(owner, _PURE_TYPES) or _jinja_object(owner)
        if _jinja_object(obj) or any(obj is g for g in self.globals.values()):
            return True
        return False

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and \
                        len(seq) * times > MAX_OUTPUT_CHARS:
                    raise SecurityError("a repetition larger than the output limit")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                abs(left).bit_length() * right > _MAX_POWER_BITS:
            raise SecurityError("a power too large")
        return super().call_binop(context, operator, left, right)

    def handle_exception(self, source: str | None = None) -> Any:
        exc, tb = sys.exc_info()[1:]
        if isinstance(exc, InputError):
            raise exc
        rendering = "template"
        while tb is not None:
            candidate = tb.tb_frame.f_locals.get("self")
            if isinstance(candidate, jinja2.Template) and candidate.filename:
                rendering = candidate.filename
            tb = tb.tb_next
        rewritten = rewrite_traceback_stack(source=source)
        raise template_error(rewritten, rendering) from None


def template_error(exc: BaseException, rendering: str = "template") -> InputError:
    """An InputError naming the template file and line where `exc` (a rewritten Jinja error) happened.

    `rendering` names the template being rendered, for an error outside any template line.
    """
    where = rendering
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{exc.filename or exc.name or where}:{exc.lineno}"
        message = f"template syntax error: {exc.message or ''}"[:200]
    else:
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name.endswith(".j2") or f"/{OVERRIDE_DIR}/" in name:
                where = f"{name}:{tb.tb_lineno}"
            tb = tb.tb_next
        kind = "refused by the template sandbox" if isinstance(exc, SecurityError) else "template failed"
        message = f"{kind} ({type(exc).__name__}: {str(exc)[:120]})"
    return InputError(where, message)


def environment(override_dir: Path | None, filters: dict[str, Callable[[Any], str]], compiled: Path | None = None,
                **options: Any) -> jinja2.Environment:
    """A strict environment (undefined names fail) searching `override_dir` first.

    `override_dir` is a domain's templates/ folder: when it exists the
    environment is the OverrideSandbox. Nothing is auto-escaped: each template
    quotes values with the filter that fits its language (`hcl`, `sh`).
    `compiled`: a directory keeping the built-in templates' compiled code
    between runs (Layout.template_cache); never for a sandbox, whose code
    differs from the plain environment's for the same template.
    """
    builtin = jinja2.FileSystemLoader(str(TEMPLATES))
    if override_dir is not None and (override_dir.exists() or override_dir.is_symlink()):
        env: jinja2.Environment = OverrideSandbox(
            loader=jinja2.ChoiceLoader([OverrideLoader(override_dir), builtin]),
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False, **options)
    else:
        env = jinja2.Environment(loader=builtin, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 autoescape=False, bytecode_cache=_bytecode_cache(compiled), **options)
    env.filters.update(filters)
    return env


def _bytecode_cache(directory: Path | None) -> jinja2.BytecodeCache | None:
    """Jinja2's file cache in `directory` (0700, made if missing); None without one or where it cannot be made.

    Its files are code this process runs: they live under the root, as
    trusted as the rest of it (docs/security.md). Jinja2 names each by the
    template and checks its source's digest and its own version on load.
    """
    if directory is None:
        return None
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None  # a full or read-only disk: compile each run, as without a cache
    return jinja2.FileSystemBytecodeCache(str(directory))
