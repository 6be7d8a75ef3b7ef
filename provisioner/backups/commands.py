"""`provision backup DOMAIN [--no-wait | --restore VERSION [--into OTHER]]` and `provision backups DOMAIN`."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from provisioner.backups.schedule import restore, schedule_backup
from provisioner.backups.store import LATEST, BackupStore
from provisioner.errors import InputError
from provisioner.spec.names import validate_domain_name

COMMAND_NAMES = ("backup", "backups")

# cli.py's Context factory: whatever it returns has `.layout`, `.domains_dir` and `.progress`.
ContextFactory = Callable[[argparse.Namespace], Any]


def add_parsers(subparsers: Any, common: Callable[[argparse.ArgumentParser], None],
                context: ContextFactory) -> None:
    """Add `backup` and `backups` to the CLI's subparsers (`common` adds the common options)."""
    backup_help = ("run the site's `make backup` on DOMAIN's guest (a post-boot job) and keep the archive it "
                   "writes as a version under the root; --restore VERSION makes a version the domain "
                   "directory's data.tar.gz (docs/backups.md)")
    backup = subparsers.add_parser("backup", help=backup_help, description=backup_help)
    common(backup)
    backup.add_argument("domain", metavar="DOMAIN", help="name of the domain's input directory")
    backup.add_argument("--no-wait", action="store_true", help="only queue the backup job (`provision worker` runs it)")
    backup.add_argument("--restore", metavar="VERSION",
                        help=f"copy this version (or `{LATEST}`) into the domain directory's data.tar.gz, after "
                             "checking its sha256 and moving the old one aside; `provision DOMAIN` then sets it up")
    backup.add_argument("--into", metavar="OTHER",
                        help="with --restore: into domain directory OTHER instead (a new guest from DOMAIN's backup)")
    backup.set_defaults(func=lambda args: cmd_backup(args, context))

    list_help = "list DOMAIN's stored site backups, oldest first"
    listing = subparsers.add_parser("backups", help=list_help, description=list_help)
    common(listing)
    listing.add_argument("domain", metavar="DOMAIN")
    listing.add_argument("--json", action="store_true", help="machine-readable output (the manifests)")
    listing.set_defaults(func=lambda args: cmd_backups(args, context))


def cmd_backup(args: argparse.Namespace, context: ContextFactory) -> int:
    """Take a backup, or restore one."""
    ctx = context(args)
    if args.into and not args.restore:
        raise InputError("--into", "only goes with --restore VERSION")
    if args.restore:
        if args.no_wait:
            raise InputError("--no-wait", "does not go with --restore (a restore copies a file, at once)")
        done = restore(ctx.layout, ctx.domains_dir, args.domain, args.restore, args.into)
        target = args.into or args.domain
        aside = f" (the previous one is now {done.moved_aside.name})" if done.moved_aside else ""
        print(f"{target}: data.tar.gz is backup {done.version.name} of {args.domain} (sha256 {done.version.sha256}, "
              f"checked){aside}; `provision {target}` sets it up")
        return 0
    job = schedule_backup(ctx.layout, ctx.domains_dir, args.domain, wait=not args.no_wait, progress=ctx.progress)
    if job.state == "queued":
        print(f"{args.domain}: backup job {job.id} queued; `provision worker` runs it, "
              f"`provision backups {args.domain}` lists the versions")
        return 0
    version = BackupStore.of(ctx.layout, args.domain).by_job(job.token)
    if version is None:  # rotated away at once only with a clock that went backwards; say what the job said
        print(f"{args.domain}: backup job {job.id} {job.state}: {job.message}")
    else:
        print(f"{args.domain}: backup {version.name} stored ({version.size} bytes, sha256 {version.sha256})")
    return 0


def cmd_backups(args: argparse.Namespace, context: ContextFactory) -> int:
    """List a domain's versions."""
    ctx = context(args)
    validate_domain_name(args.domain)
    versions = BackupStore.of(ctx.layout, args.domain).versions()
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2))
        return 0
    print(f"{'VERSION':30} {'CREATED':23} {'SIZE':>12} {'JOB':>5} SHA256")
    for v in versions:
        print(f"{v.name:30} {v.created_utc:23} {v.size:>12} {v.job_id:>5} {v.sha256}")
    return 0

