"""Backup failures, each naming what went wrong and where."""

from __future__ import annotations

from provisioner.errors import InputError, ProvisionError
from provisioner.postboot.errors import SetupFailed


class BackupFailed(SetupFailed):
    """The guest-side backup (`make backup`) ended with a non-zero status or wrote no archive."""


class BackupRefused(ProvisionError):
    """The archive the guest produced is not stored: too large, or not a safe site archive."""


class BackupCorrupt(ProvisionError):
    """A stored version's file does not match its recorded size or sha256."""


class NoSuchVersion(InputError):
    """No stored version of that name."""
