"""bin/provision: the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from provisioner.errors import ProvisionError
from provisioner.layout import DEFAULT_ROOT, Layout
from provisioner import pipeline


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                       help=f"where everything is written (env PROVISION_ROOT; default {DEFAULT_ROOT})")
    group.add_argument("--domains", type=Path, default=argparse.SUPPRESS,
                       help="directory holding domain input directories (env PROVISION_DOMAINS; default: current directory)")
    group.add_argument("--libvirt-uri", default=argparse.SUPPRESS,
                       help="override every domain's libvirt_uri (env PROVISION_LIBVIRT_URI)")


def _context(args: argparse.Namespace) -> pipeline.Context:
    root = getattr(args, "root", None) or Path(os.environ.get("PROVISION_ROOT") or DEFAULT_ROOT)
    domains = getattr(args, "domains", None) or Path(os.environ.get("PROVISION_DOMAINS") or ".")
    uri = getattr(args, "libvirt_uri", None) or os.environ.get("PROVISION_LIBVIRT_URI") or None
    return pipeline.Context(Layout(root.absolute()), domains.absolute(), uri)


def cmd_render(args: argparse.Namespace) -> int:
    result = pipeline.render(args.domain, _context(args))
    print(f"rendered {result.spec.name} into {result.workspace}"
          f" ({len(result.changed)} file(s) changed{': ' + ', '.join(result.changed) if result.changed else ''})")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "render": (cmd_render, "validate a domain's input and write its artifacts (seed ISO, cloud-init, Terraform plan); touches neither libvirt nor Terraform"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Provision libvirt guests from per-domain config directories, through Terraform.",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        _common(cmd)
        cmd.set_defaults(func=func)
        if name in ("render",):
            cmd.add_argument("domain", metavar="DOMAIN", help="name of the domain's input directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `provision` / bin/provision."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ProvisionError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("provision: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
