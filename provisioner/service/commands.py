"""`provision install-service` and `provision uninstall-service`: the engine under systemd (docs/service.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Callable

from provisioner.layout import DEFAULT_ROOT
from provisioner.service.install import DEFAULT_UNIT_DIR, install, uninstall
from provisioner.service.units import DEFAULT_PORT, DEFAULT_SCHEDULE, STARTED, ServiceSettings

COMMAND_NAMES = ("install-service", "uninstall-service")


def add_parsers(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `install-service` and `uninstall-service` to the CLI's subparsers (`common` adds --root, -q, …)."""
    text = ("write the systemd units (the API socket-activated, the post-boot worker, a timer for `image sync`), "
            "reload systemd and enable them; running it again changes nothing")
    parser = subparsers.add_parser("install-service", help=text, description=text)
    common(parser)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the API's port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="the API's loopback address (default 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=2, help="API processes sharing the socket (default 2)")
    parser.add_argument("--image-list", type=Path, metavar="FILE",
                        help="the list `image sync` reads on the timer (default ROOT/images.list; absent: skipped)")
    parser.add_argument("--sync-schedule", default=DEFAULT_SCHEDULE, metavar="ONCALENDAR",
                        help=f"when the timer runs the sync (systemd OnCalendar=; default {DEFAULT_SCHEDULE})")
    parser.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR,
                        help=f"where the unit files go (default {DEFAULT_UNIT_DIR})")
    parser.add_argument("--no-enable", action="store_true", help="only write the units and reload systemd")
    parser.set_defaults(func=cmd_install)

    text = "stop and disable the units install-service wrote, and remove them"
    parser = subparsers.add_parser("uninstall-service", help=text, description=text)
    common(parser)
    parser.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR,
                        help=f"where the unit files are (default {DEFAULT_UNIT_DIR})")
    parser.set_defaults(func=cmd_uninstall)


def _root(args: argparse.Namespace) -> Path:
    return (getattr(args, "root", None) or Path(os.environ.get("PROVISION_ROOT") or DEFAULT_ROOT)).absolute()


def cmd_install(args: argparse.Namespace) -> int:
    """Install (or refresh) the units; say what changed."""
    settings = ServiceSettings(root=_root(args), port=args.port, host=args.host, workers=args.workers,
                               image_list=args.image_list.absolute() if args.image_list else None,
                               sync_schedule=args.sync_schedule)
    result = install(settings, args.unit_dir.absolute(), enable=not args.no_enable)
    if result.changed:
        print(f"wrote {', '.join(result.changed)} in {result.unit_dir}")
    else:
        print(f"units in {result.unit_dir} already current")
    if not args.no_enable:
        print(f"enabled and started {', '.join(STARTED)}; the API answers on http://{settings.listen}/identity")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    """Remove the units; say which."""
    removed = uninstall(args.unit_dir.absolute())
    print(f"removed {', '.join(removed)}" if removed else f"no provisioner units in {args.unit_dir}")
    return 0
