"""Post-boot: a host-side job queue that sets a booted guest up over SSH.

The job waits for SSH (host key pinned), waits for cloud-init, pushes
data.tar.gz and a setup script, has the guest's atd run `make`, and fetches
the log. docs/postboot.md describes the states, files and settings.
"""

from provisioner.postboot.errors import PostbootError, PostbootFailed
from provisioner.postboot.queue import JobQueue, JobRecord
from provisioner.postboot.schedule import schedule_postboot
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.worker import BackgroundWorker, run_worker

__all__ = ["BackgroundWorker", "JobQueue", "JobRecord", "PostbootError", "PostbootFailed",
           "PostbootSettings", "run_worker", "schedule_postboot"]
