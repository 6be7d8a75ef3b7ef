"""What a backup job runs on the guest: the backup script and the command lines around it.
Pure functions: every value is quoted with shlex.quote.

The job works in its own `~/.provisioner/jobs/<domain>-<token>/` (like a setup
job) and runs `make backup` in the `site/` directory of the domain's last
successful setup job there.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

SCRIPT_NAME = "backup.sh"
ARCHIVE_NAME = "backup.tar.gz"
ARCHIVE_VARIABLE = "BACKUP_ARCHIVE"
q = shlex.quote

_SCRIPT = """#!/bin/sh
# provisioner site backup: `make backup` in the site's directory, run by atd.
# $1 is this job's directory; in it the script writes:
#   started         this script's pid, when it starts
#   make.log        everything make prints
#   {archive_name}   what `make backup` wrote to ${variable}
#   exit-status     "site STATUS", "make STATUS" or "archive STATUS", written last
set -u
job=$1
cd "$job" || exit 1
exec >>"$job/make.log" 2>&1 </dev/null

finish() {{
    printf '%s %s\\n' "$1" "$2" >"$job/exit-status.tmp" && mv -f "$job/exit-status.tmp" "$job/exit-status"
    exit "$2"
}}

printf '%s\\n' "$$" >started.tmp && mv -f started.tmp started
site="${{job%/*}}"/{site_job}/site
{variable}="$job/{archive_name}"
export {variable}
rm -f "${variable}"
printf 'provisioner: backing up %s: make backup in %s\\n' {domain} "$site"
if ! cd "$site"; then
    echo "provisioner: the site's directory is gone: provision the domain again, then back it up"
    finish site 125
fi
make backup
status=$?
[ "$status" -eq 0 ] || finish make "$status"
if [ -L "${variable}" ] || [ ! -f "${variable}" ]; then
    echo "provisioner: make backup succeeded but wrote no regular file at \\${variable} (${variable})"
    finish archive 125
fi
printf 'provisioner: make backup wrote %s bytes\\n' "$(wc -c <"${variable}")"
finish make 0
"""


def render_backup_script(domain: str, site_job: str) -> str:
    """The backup script for `domain`, backing up the site set up by the job directory `site_job`."""
    return _SCRIPT.format(domain=q(domain), site_job=q(site_job), variable=ARCHIVE_VARIABLE,
                          archive_name=ARCHIVE_NAME)


def size_command(directory: PurePosixPath) -> str:
    """Prints the size in bytes of the archive the backup wrote."""
    return f"wc -c < {q(str(directory / ARCHIVE_NAME))}"


def download_command(directory: PurePosixPath) -> str:
    """Writes the archive to stdout."""
    return f"cat < {q(str(directory / ARCHIVE_NAME))}"


def remove_command(directory: PurePosixPath) -> str:
    """Removes the archive once the host has stored it (the guest keeps make.log)."""
    return f"rm -f -- {q(str(directory / ARCHIVE_NAME))}"
