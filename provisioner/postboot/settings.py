"""Timeouts and poll intervals of the post-boot job: defaults, overridable per process.

Every field can be set with an environment variable `PROVISION_POSTBOOT_<FIELD>`
(e.g. `PROVISION_POSTBOOT_SSH_TIMEOUT=300`), read by the process that runs the
job (the `provision` command, `provision worker` or the API server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Mapping

from provisioner.errors import ProvisionError

ENV_PREFIX = "PROVISION_POSTBOOT_"


@dataclass(frozen=True)
class PostbootSettings:
    """How long each step may take and how often the guest is polled (seconds)."""

    # A Debian guest under TCG reaches SSH in about 2.5 minutes.
    ssh_timeout: float = 900.0
    connect_timeout: float = 10.0
    # Includes cloud-init's apt-get update and package installs.
    cloud_init_timeout: float = 1800.0
    push_timeout: float = 600.0
    command_timeout: float = 120.0
    start_timeout: float = 120.0
    make_timeout: float = 7200.0
    poll_initial: float = 0.5
    # Each poll is one command over the ControlMaster connection (or one SSH
    # connect while the guest boots): cheap, and a long back-off made the job
    # notice a ready guest up to 15 s late (bench/e2e.py).
    poll_max: float = 3.0
    poll_factor: float = 1.5
    # How long one command may wait on the guest for cloud-init or make to finish
    # (checking every 0.2 s there) before the host asks again.
    guest_wait: float = 10.0
    # Where cloud-init records its run on the guest (result.json once it has finished).
    cloud_init_dir: str = "/run/cloud-init"
    control_persist: float = 120.0
    max_attempts: int = 3
    worker_idle: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PostbootSettings:
        """Defaults, overridden by `PROVISION_POSTBOOT_*` variables; a bad value is an error naming it."""
        environ = os.environ if environ is None else environ
        changes: dict[str, float | int | str] = {}
        for field in fields(cls):
            variable = ENV_PREFIX + field.name.upper()
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            if field.type in (str, "str"):
                changes[field.name] = raw
                continue
            kind = int if field.type in (int, "int") else float
            try:
                value = kind(raw)
            except ValueError:
                unit = "tries" if kind is int else "seconds"
                raise ProvisionError(f"{variable}={raw!r}: must be a number of {unit}") from None
            if value <= 0:
                raise ProvisionError(f"{variable}={raw!r}: must be greater than 0")
            changes[field.name] = value
        return replace(cls(), **changes)
