"""Post-boot: a host-side job queue that sets a booted guest up over SSH.

The job waits for SSH (host key pinned), waits for cloud-init, pushes
data.tar.gz and a setup script, has the guest's atd run `make`, and fetches
the log. docs/postboot.md describes the states, files and settings.

Nothing is imported here: `provision DOMAIN` reaches the queue without
loading the job runner (ssh, the guest script's templates).
"""
