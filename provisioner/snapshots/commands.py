"""`provision snapshot DOMAIN [NAME]`, `snapshots DOMAIN`, `restore DOMAIN NAME`, `snapshot-delete DOMAIN NAME`."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from provisioner.snapshots import operations
from provisioner.snapshots.store import DEFAULT_MAX, MAX_ENV

COMMAND_NAMES = ("snapshot", "snapshots", "restore", "snapshot-delete")

# cli.py's Context factory: whatever it returns has `.layout`.
ContextFactory = Callable[[argparse.Namespace], Any]


def add_parsers(subparsers: Any, common: Callable[[argparse.ArgumentParser], None],
                context: ContextFactory) -> None:
    """Add the snapshot commands to the CLI's subparsers (`common` adds the common options)."""
    def command(name: str, help_text: str, func: Callable[[argparse.Namespace, Any], int]) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        common(parser)
        parser.add_argument("domain", metavar="DOMAIN", help="a provisioned domain")
        parser.set_defaults(func=lambda args: func(args, context(args)))
        return parser

    take = command("snapshot", "copy every disk of DOMAIN's guest (paused while copied if it runs) into its "
                               f"workspace's snapshots/NAME (at most {DEFAULT_MAX} per domain, {MAX_ENV}; "
                               "docs/snapshots.md)", cmd_snapshot)
    take.add_argument("name", metavar="NAME", nargs="?",
                      help="1 to 64 letters, digits, '.', '_', '-' (default: the UTC time, 20261206T061500Z)")
    listing = command("snapshots", "list DOMAIN's snapshots, oldest first", cmd_snapshots)
    listing.add_argument("--json", action="store_true", help="machine-readable output (the manifests)")
    command("restore", "stop DOMAIN's guest, put snapshot NAME's disks back (each checked against its sha256), "
                       "start it", cmd_restore).add_argument("name", metavar="NAME")
    command("snapshot-delete", "delete DOMAIN's snapshot NAME", cmd_delete).add_argument("name", metavar="NAME")


def cmd_snapshot(args: argparse.Namespace, ctx: Any) -> int:
    """Take a snapshot."""
    snapshot = operations.take(operations.find_domain(ctx.layout, args.domain), args.name)
    print(f"{args.domain}: snapshot {snapshot.name} taken ({len(snapshot.disks)} disk(s), {snapshot.size} bytes"
          f"{', the guest paused while copied' if snapshot.was_running else ''})")
    return 0


def cmd_snapshots(args: argparse.Namespace, ctx: Any) -> int:
    """List a domain's snapshots."""
    snapshots = operations.find_domain(ctx.layout, args.domain).store.snapshots()
    if args.json:
        print(json.dumps([s.to_json() for s in snapshots], indent=2))
        return 0
    print(f"{'NAME':32} {'CREATED':21} {'DISKS':>5} {'SIZE':>14} STATE")
    for s in snapshots:
        print(f"{s.name:32} {s.created:21} {len(s.disks):>5} {s.size:>14} {'running' if s.was_running else 'shut off'}")
    return 0


def cmd_restore(args: argparse.Namespace, ctx: Any) -> int:
    """Restore a snapshot."""
    snapshot = operations.restore(operations.find_domain(ctx.layout, args.domain), args.name)
    print(f"{args.domain}: restored snapshot {snapshot.name} of {snapshot.created} "
          f"({len(snapshot.disks)} disk(s)); the guest is started")
    return 0


def cmd_delete(args: argparse.Namespace, ctx: Any) -> int:
    """Delete a snapshot."""
    snapshot = operations.delete(operations.find_domain(ctx.layout, args.domain), args.name)
    print(f"{args.domain}: snapshot {snapshot.name} deleted")
    return 0
