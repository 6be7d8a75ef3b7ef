"""The two steps only a layer job has (between `cloud-init` and `push`). Both are
idempotent: cloud-init's users and package modules converge, `ip addr replace`
and the atomically replaced interfaces file do too."""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Sequence

from provisioner.postboot import layer_commands
from provisioner.postboot.errors import CloudInitFailed, PostbootError
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.steps import Guest, Log, push, remote


def apply_cloud_config(guest: Guest, directory: PurePosixPath, config: Path, packages: bool,
                       settings: PostbootSettings, log: Log) -> None:
    """Push the domain's cloud-config into the job directory and run cloud-init's modules on it."""
    push(guest, directory, {layer_commands.CONFIG_NAME: config}, settings)
    command = layer_commands.cloud_init_command(directory / layer_commands.CONFIG_NAME, packages)
    deadline = time.monotonic() + settings.cloud_init_timeout
    result = remote(guest, command, deadline, settings, per_call=settings.cloud_init_timeout)
    log("cloud-init single:\n" + (result.text.rstrip() or "(no output)"))
    if result.returncode != 0:
        raise CloudInitFailed(f"cloud-init's modules failed applying the domain's users and packages "
                              f"(exit status {result.returncode}): {_last_line(result.text)}")


def add_addresses(guest: Guest, domain: str, addresses: Sequence[str], settings: PostbootSettings,
                  log: Log) -> None:
    """Add the domain's static addresses to the machine (see layer_commands.network_command)."""
    deadline = time.monotonic() + settings.command_timeout
    result = remote(guest, layer_commands.network_command(domain, addresses), deadline, settings)
    log("network:\n" + (result.text.rstrip() or "(no output)"))
    if result.returncode != 0:
        raise PostbootError(f"could not add {', '.join(addresses)} to the machine (exit status "
                            f"{result.returncode}): {_last_line(result.text)}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
