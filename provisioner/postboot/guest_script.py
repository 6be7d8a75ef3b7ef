"""What runs on the guest: the setup script (rendered from a template) and the command
lines the job sends over SSH. Pure functions: every value is quoted with shlex.quote.

Guest-side files of a job live in `$HOME/.provisioner/jobs/<domain>-<token>/` of
the login user (docs/postboot.md lists them).
"""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath

from provisioner.templates import environment

SCRIPT_TEMPLATE = "postboot/setup.sh.j2"
ARCHIVE_NAME = "data.tar.gz"
SCRIPT_NAME = "setup.sh"
q = shlex.quote


def render_setup_script(domain: str, override_dir: Path | None = None) -> str:
    """The setup script for `domain`; `override_dir` (a domain's `templates/`) may replace the template."""
    env = environment(override_dir, {"sh": shlex.quote})
    return env.get_template(SCRIPT_TEMPLATE).render(domain=domain)


def job_dir(home: str, name: str) -> PurePosixPath:
    """The job's directory on the guest, under the login user's home."""
    return PurePosixPath(home) / ".provisioner" / "jobs" / name


HOME_COMMAND = "printf '%s\\n' \"$HOME\""
"""Prints the login user's home: the probe that SSH works, and where the job directory goes."""

def _steps(wait: float) -> int:
    """How many 0.2 s sleeps make `wait` seconds."""
    return max(1, int(wait * 5))


RESULT_MARKER = "provisioner-result.json:"
"""Precedes result.json in cloud_init_command's output when cloud-init has finished."""


def cloud_init_command(run_dir: str, wait: float) -> str:
    """Prints cloud-init's outcome: RESULT_MARKER and result.json once it has finished, else its status.

    While cloud-init runs (`run_dir` exists, result.json not yet) the guest
    first waits up to `wait` seconds for result.json in 0.2 s steps. Once it is
    there, its error list is the verdict: `cloud-init status` is a Python
    program that takes seconds under TCG, and polling it from the host noticed
    the end late. Not `cloud-init status --wait`: it can return early on
    errors, and polling keeps the timeout ours.
    """
    d, result = q(run_dir), q(run_dir + "/result.json")
    return (f"i=0; while [ -d {d} ] && [ ! -e {result} ] && [ $i -lt {_steps(wait)} ]; "
            "do sleep 0.2; i=$((i+1)); done; "
            f"if [ -e {result} ]; then echo {q(RESULT_MARKER)}; cat {result}; exit 0; fi; "
            "cloud-init status --long; printf '\\nprovisioner-status=%s\\n' \"$?\"")


def push_command(directory: PurePosixPath, name: str) -> str:
    """Store stdin as `directory/name`, atomically (a half-pushed file never has the final name)."""
    part = directory / f".{name}.part"
    return (f"umask 077 && mkdir -p {q(str(directory))} && cat > {q(str(part))} && "
            f"mv -f {q(str(part))} {q(str(directory / name))}")


def state_command(directory: PurePosixPath) -> str:
    """Prints the job's guest-side state.

    `absent` (no job directory), `new` (pushed, not submitted), `submitted`,
    `running`, `finished PHASE STATUS`, or `vanished`: the script started but
    is gone without an exit status (the guest rebooted, or it was killed).
    exit-status is checked again after the liveness test: the script may have
    finished in between.
    """
    d = q(str(directory))
    finished = "printf 'finished %s\\n' \"$(cat exit-status)\""
    return (f"if ! cd {d} 2>/dev/null; then echo absent; "
            f"elif [ -e exit-status ]; then {finished}; "
            "elif [ -e started ]; then "
            f"if kill -0 \"$(cat started)\" 2>/dev/null; then echo running; "
            f"elif [ -e exit-status ]; then {finished}; else echo vanished; fi; "
            "elif [ -d submitted ]; then echo submitted; "
            "else echo new; fi")


def wait_state_command(directory: PurePosixPath, seen: str, wait: float) -> str:
    """Prints the job's state as soon as it differs from `seen`, or after `wait` seconds.

    The guest checks every 0.2 s, so the end of make is noticed at once
    without the host sending a command per check.
    """
    return (f"st() {{ {state_command(directory)}; }}; s=$(st); i=0; "
            f"while [ \"$s\" = {q(seen)} ] && [ $i -lt {_steps(wait)} ]; do sleep 0.2; i=$((i+1)); s=$(st); done; "
            "printf '%s\\n' \"$s\"")


def submit_command(directory: PurePosixPath, script: str = SCRIPT_NAME) -> str:
    """Submit the job's script (the setup script unless named) to atd exactly once.

    `mkdir submitted` is the atomic guard: a resumed job finds it and does not
    submit again. The shell ignores SIGHUP so a dropped SSH session cannot stop
    it between the guard and `at`.
    """
    d = str(directory)
    at_input = f"exec /bin/sh {q(d + '/' + script)} {q(d)}"
    return (f"trap '' HUP; cd {q(d)} || exit 1; "
            "command -v at >/dev/null || { echo 'at is not installed on the guest (package at)' >&2; exit 3; }; "
            "mkdir submitted 2>/dev/null || exit 0; "
            f"printf '%s\\n' {q(at_input)} | at now 2>submitted/at.out && exit 0; "
            "cat submitted/at.out >&2; rm -rf submitted; exit 3")


def log_command(directory: PurePosixPath) -> str:
    """Prints the job's log (unpacking and make's output)."""
    return f"cat {q(str(directory / 'make.log'))}"


ATQ_COMMAND = "atq 2>&1; pgrep -x atd >/dev/null && echo 'atd is running' || echo 'atd is not running'"
"""Diagnostics when atd never starts the script."""
