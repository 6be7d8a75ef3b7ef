"""Post-boot failures, each with a message saying what happened and what to do."""

from __future__ import annotations

from provisioner.errors import ProvisionError


class PostbootError(ProvisionError):
    """A post-boot step failed; the job is recorded as failed with this message."""


class GuestUnreachable(PostbootError):
    """SSH to the guest did not succeed before the step's deadline."""


class HostKeyRejected(PostbootError):
    """The guest presented a host key other than the pinned one: never retried."""


class CloudInitFailed(PostbootError):
    """cloud-init reported an error on the guest."""


class StepTimeout(PostbootError):
    """A step did not finish within its timeout setting."""


class SetupFailed(PostbootError):
    """The guest-side setup (unpack or make) finished with a non-zero status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class JobNotFound(ProvisionError):
    """No job with that id in the queue."""


class JobStateError(ProvisionError):
    """The job is not in a state that allows the requested operation."""


class PostbootFailed(ProvisionError):
    """`provision DOMAIN` ran the post-boot job and it failed."""
