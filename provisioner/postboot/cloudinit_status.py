"""Reading cloud-init's state on the guest from `cloud-init status --long` and result.json."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from provisioner.postboot.guest_script import RESULT_MARKER

RUNNING, DONE, ERROR, DISABLED, MISSING, UNKNOWN = "running", "done", "error", "disabled", "missing", "unknown"

_STATUS = re.compile(r"^status:\s*(.+?)\s*$", re.M)
_EXIT = re.compile(r"^provisioner-status=(\d+)\s*$", re.M)
# cloud-init 22.x records "('locale', ProcessExecutionError(...))"; 23.x+ "Running module locale (...) failed".
_MODULE_PATTERNS = (re.compile(r"\('([A-Za-z0-9_-]+)',"), re.compile(r"[Rr]unning module ([A-Za-z0-9_-]+)"))


@dataclass(frozen=True)
class CloudInitStatus:
    """cloud-init's overall state, and what failed when it reports an error."""

    state: str
    raw_status: str
    errors: tuple[str, ...] = ()
    failed_modules: tuple[str, ...] = ()

    def describe(self) -> str:
        """One sentence for a failure message."""
        if self.state == MISSING:
            return "cloud-init is not installed on the guest (command not found)"
        if self.state == DISABLED:
            return "cloud-init is disabled on the guest, so it never applied the seed"
        modules = ", ".join(self.failed_modules) or "unknown modules"
        first = f"; first error: {self.errors[0][:300]}" if self.errors else ""
        return f"cloud-init reported an error in: {modules}{first}"


def parse_cloud_init(output: str) -> CloudInitStatus:
    """Parse the output of guest_script.cloud_init_command."""
    _, marker, result = output.partition(RESULT_MARKER)
    if marker:
        return _from_result(result)
    exit_match = _EXIT.search(output)
    status_part = output.partition(exit_match.group(0))[0] if exit_match else output
    status_match = _STATUS.search(status_part)
    raw = status_match.group(1) if status_match else ""
    if not status_match:
        missing = exit_match is not None and exit_match.group(1) == "127"
        return CloudInitStatus(MISSING if missing else UNKNOWN, raw)
    if "error" in raw:
        state = ERROR
    elif "done" in raw:
        state = DONE
    elif raw in ("running", "not run", "not started"):
        state = RUNNING
    elif raw == "disabled":
        state = DISABLED
    else:
        state = UNKNOWN
    if state != ERROR:
        return CloudInitStatus(state, raw)
    errors = _long_errors(status_part)
    return CloudInitStatus(state, raw, errors, _modules(errors))


def _from_result(text: str) -> CloudInitStatus:
    """The verdict of a finished cloud-init: result.json's error list (unreadable: still being written)."""
    try:
        data = json.loads(text)
    except ValueError:
        return CloudInitStatus(RUNNING, "finishing")
    errors = data.get("v1", {}).get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return CloudInitStatus(RUNNING, "finishing")
    if not errors:
        return CloudInitStatus(DONE, "done")
    messages = tuple(str(e) for e in errors)
    return CloudInitStatus(ERROR, "error", messages, _modules(messages))


def _modules(errors: tuple[str, ...]) -> tuple[str, ...]:
    """The module names the error messages mention, in order, once each."""
    return tuple(dict.fromkeys(m for text in errors for p in _MODULE_PATTERNS for m in p.findall(text)))


def _long_errors(text: str) -> tuple[str, ...]:
    """Error lines of `status --long` (its `detail:`/`errors:` sections)."""
    out: list[str] = []
    capture = False
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in ("detail", "errors"):
            capture = True
            continue
        if capture and re.match(r"^[a-z_]+:", line):
            capture = False
        if capture and line.strip():
            out.append(line.strip().lstrip("- ").strip())
    return tuple(out)
