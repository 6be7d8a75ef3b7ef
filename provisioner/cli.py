"""bin/provision: the command line."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from provisioner import layering, pipeline
from provisioner.errors import ProvisionError
from provisioner.layer_record import read_layer
from provisioner.layout import DEFAULT_ROOT, Layout, restrict_umask
from provisioner.progress import Progress
from provisioner.spec.names import validate_domain_name
from provisioner.status import domain_status
from provisioner.terraform.providers import EMBEDDED, SOURCES


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                       help=f"where everything is written (env PROVISION_ROOT; default {DEFAULT_ROOT})")
    group.add_argument("--domains", type=Path, default=argparse.SUPPRESS,
                       help="directory holding domain input directories (env PROVISION_DOMAINS; default: current directory)")
    group.add_argument("--libvirt-uri", default=argparse.SUPPRESS,
                       help="override every domain's libvirt_uri (env PROVISION_LIBVIRT_URI)")


    group.add_argument("--provider", choices=SOURCES, default=argparse.SUPPRESS,
                       help="Terraform libvirt provider: the embedded one (offline) or upstream's from the "
                            "registry (env PROVISION_TERRAFORM_PROVIDER; default embedded)")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print only results and errors")


def _root(args: argparse.Namespace) -> Path:
    return (getattr(args, "root", None) or Path(os.environ.get("PROVISION_ROOT") or DEFAULT_ROOT)).absolute()


def _context(args: argparse.Namespace) -> pipeline.Context:
    root = _root(args)
    domains = getattr(args, "domains", None) or Path(os.environ.get("PROVISION_DOMAINS") or ".")
    uri = getattr(args, "libvirt_uri", None) or os.environ.get("PROVISION_LIBVIRT_URI") or None
    provider = getattr(args, "provider", None) or os.environ.get("PROVISION_TERRAFORM_PROVIDER") or EMBEDDED
    if provider not in SOURCES:
        raise ProvisionError(f"PROVISION_TERRAFORM_PROVIDER={provider!r}: use {' or '.join(SOURCES)}")
    return pipeline.Context(Layout(root), domains.absolute(), uri, provider,
                            Progress(quiet=getattr(args, "quiet", False)))


def cmd_render(args: argparse.Namespace) -> int:
    result = pipeline.render(args.domain, _context(args))
    print(f"rendered {result.spec.name} into {result.workspace}"
          f" ({len(result.changed)} file(s) changed{': ' + ', '.join(result.changed) if result.changed else ''})")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    result = layering.provision_domain(args.domain, _context(args), yes=args.yes, wait=not args.no_wait,
                                       existing=args.existing, host_key=args.host_key)
    detail = f" ({len(result.changes)} resource(s) changed)" if result.changes else ""
    if result.layered_on is not None:
        detail = f" on {result.layered_on} (no VM of its own)"
    print(f"{result.spec.name}: {result.outcome}{detail}")
    if result.simulated:
        print(f"{result.spec.name}: this is a simulation ({result.spec.libvirt_uri}, libvirt's test driver): "
              "nothing boots, so the post-boot step is skipped: there is no real guest to reach")
    elif result.job is not None:
        hint = "; `provision worker` runs it, `provision jobs` shows it" if result.job.state == "queued" else ""
        print(f"{result.spec.name}: post-boot job {result.job.id} {result.job.state}"
              f"{': ' + result.job.message if result.job.message else ''}{hint}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    print(pipeline.plan(args.domain, _context(args)), end="")
    return 0


def _destroy_target(name: str, ctx: pipeline.Context) -> str:
    """What destroying NAME removes, in words; an error if there is no such domain (before any prompt)."""
    validate_domain_name(name)
    directory = ctx.layout.domain_dir(name)
    layer = read_layer(directory)
    if layer is not None:
        return f"layered domain {name}: its workspace only (the machine {layer.machine} is not touched)"
    if (directory / "terraform" / "main.tf").is_file():
        return f"domain {name}: its VM's resources (guest, disks, seed) and its workspace"
    raise ProvisionError(f"no domain {name!r} under {ctx.layout.domains}: nothing to destroy "
                         "(`provision status` lists the domains)")


def cmd_destroy(args: argparse.Namespace) -> int:
    ctx = _context(args)
    target = _destroy_target(args.domain, ctx)
    if not args.yes:
        pipeline.confirm(f"destroy {target}")
    layer = layering.destroy_domain(args.domain, ctx)
    if layer is None:
        print(f"{args.domain}: destroyed")
    else:
        print(f"{args.domain}: layered on {layer.on}: removed its workspace only; the machine ({layer.machine}) "
              "was not touched, and what the layer job set up there (users, packages, addresses, site) stays")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    statuses = domain_status(_context(args).layout, args.domain)
    if args.json:
        print(json.dumps([s.to_json() for s in statuses], indent=2))
        return 0
    print(f"{'DOMAIN':30} {'STATE':12} {'RES':>3} {'LAST APPLY':20} ADDRESSES")
    for s in statuses:
        last = s.last_apply or {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["finished"])) if last else "-"
        print(f"{s.name:30} {s.state:12} {s.resources:>3} {(last.get('state', '') + ' ' + when).strip():20} "
              f"{', '.join(s.addresses) or '-'}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "apply": (cmd_apply, "render DOMAIN and converge it through Terraform (the default: `provision DOMAIN`); "
                         "with depends_on or --existing, layer it onto another machine"),
    "render": (cmd_render, "validate a domain's input and write its artifacts (seed ISO, cloud-init, "
                           "Terraform plan); touches neither libvirt nor Terraform"),
    "plan": (cmd_plan, "render DOMAIN and show what an apply would change (Terraform's plan); changes nothing"),
    "destroy": (cmd_destroy, "destroy exactly DOMAIN's resources and workspace; shared objects stay "
                             "(a layered domain: its workspace only)"),
    "status": (cmd_status, "show each domain's state (Terraform state and libvirt) and addresses"),
}


def _image_parsers(sub: argparse._SubParsersAction) -> None:
    from provisioner.images import commands  # imported only to run or list `image` (see _GROUPS)

    def cmd_image(args: argparse.Namespace) -> int:
        ctx = _context(args)
        return commands.run(args, ctx.layout, ctx.progress)

    commands.add_image_parser(sub, _common).set_defaults(func=cmd_image)


def _postboot_parsers(sub: argparse._SubParsersAction) -> None:
    from provisioner.postboot import commands  # imported only to run or list its commands (see _GROUPS)
    commands.add_parsers(sub, _common, _context)


def _backup_parsers(sub: argparse._SubParsersAction) -> None:
    from provisioner.backups import commands  # imported only to run or list its commands (see _GROUPS)
    commands.add_parsers(sub, _common, _context)


def _snapshot_parsers(sub: argparse._SubParsersAction) -> None:
    from provisioner.snapshots import commands  # imported only to run or list its commands (see _GROUPS)
    commands.add_parsers(sub, _common, _context)


def _api_parsers(sub: argparse._SubParsersAction) -> None:
    from api import cli  # imported only to run or list the API's commands (see _GROUPS)
    cli.add_parsers(sub, _common)


def _service_parsers(sub: argparse._SubParsersAction) -> None:
    from provisioner.service import commands  # imported only to run or list its commands (see _GROUPS)
    commands.add_parsers(sub, _common)


# The commands other modules define (their COMMAND_NAMES; tests/test_cli_imports.py holds the two equal), by
# the function adding their parsers. The parser holds only the group of the command being run (every group
# when there is no command, e.g. `provision --help`), so `provision DOMAIN` imports none of these modules:
# not the API's (its accounts, config, store), nor those of images, snapshots, backups, post-boot jobs, service.
_GROUPS: dict[tuple[str, ...], Callable[[argparse._SubParsersAction], None]] = {
    ("image",): _image_parsers,
    ("jobs", "worker"): _postboot_parsers,
    ("backup", "backups"): _backup_parsers,
    ("snapshot", "snapshots", "restore", "snapshot-delete"): _snapshot_parsers,
    ("serve", "users", "openrc", "clouds-yaml"): _api_parsers,
    ("install-service", "uninstall-service"): _service_parsers,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line: every command, or with `command` this module's own and those of `command`'s group."""
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
        if name == "status":
            cmd.add_argument("domain", metavar="DOMAIN", nargs="?", help="one domain (default: all)")
            cmd.add_argument("--json", action="store_true", help="machine-readable output")
        else:
            cmd.add_argument("domain", metavar="DOMAIN", help="name of the domain's input directory")
        if name in ("apply", "destroy"):
            cmd.add_argument("-y", "--yes", action="store_true",
                             help="go ahead without asking when resources would be replaced or destroyed")
        if name == "apply":
            cmd.add_argument("--no-wait", action="store_true",
                             help="only queue the post-boot job (`provision worker` runs it)")
            cmd.add_argument("--existing", metavar="[USER@]HOST[:PORT]",
                             help="layer DOMAIN onto this machine (not provisioned by the engine); its host key "
                                  "must be in ~/.ssh/known_hosts or given with --host-key; the login uses the "
                                  "domain's own key (keys/id_ed25519.pub in its workspace), which must be "
                                  "authorized there")
            cmd.add_argument("--host-key", metavar="FILE", type=Path,
                             help="with --existing: the machine's public host key (a .pub file or known_hosts lines)")
    for names, add_parsers in _GROUPS.items():
        if command is None or command in names:
            add_parsers(sub)
    return parser


def _first_word(argv: list[str]) -> str | None:
    """The first argument that is neither an option nor an option's value (None: none, or --help first)."""
    for index, arg in enumerate(argv):
        if arg in ("-h", "--help"):
            return None
        if arg.startswith("-") or (index > 0 and argv[index - 1] in _VALUE_OPTIONS):
            continue
        return arg
    return None


def _default_command(argv: list[str]) -> list[str]:
    """`provision [OPTIONS] DOMAIN …` means `provision apply [OPTIONS] DOMAIN …`."""
    word = _first_word(argv)
    return argv if word is None or word in _ALL_COMMANDS else ["apply", *argv]


_VALUE_OPTIONS = {"--root", "--domains", "--libvirt-uri", "--provider", "--existing", "--host-key"}
_ALL_COMMANDS = {*COMMANDS, *(name for names in _GROUPS for name in names)}


_STORAGE_ERRNOS = {errno.ENOSPC: "ENOSPC", errno.EDQUOT: "EDQUOT", errno.EROFS: "EROFS",
                   errno.EFBIG: "EFBIG", errno.EIO: "EIO"}
_SQLITE_STORAGE = {13: "SQLITE_FULL", 10: "SQLITE_IOERR"}  # primary result codes; a full disk gives either


def storage_error(exc: OSError | sqlite3.OperationalError, root: Path) -> str | None:
    """One line naming the path for a full, read-only or failing filesystem (None for any other error).

    Writes are atomic (temp file + rename) and Terraform keeps its state, so
    running the command again once there is room converges.
    """
    if isinstance(exc, sqlite3.OperationalError):
        code = _SQLITE_STORAGE.get((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF)
        if code is None:
            return None
        where, what = f"a database under {root}", f"{exc} ({code})"
    elif exc.errno in _STORAGE_ERRNOS:
        where = exc.filename or f"writing under {root}"
        what = f"{(exc.strerror or 'storage error').lower()} ({_STORAGE_ERRNOS[exc.errno]})"
    else:
        return None
    return f"{where}: {what}: make room (or fix the filesystem) and run the command again"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `provision` / bin/provision."""
    restrict_umask()
    argv = _default_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(_first_word(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        Layout(_root(args)).protect_root()
        return args.func(args)
    except ProvisionError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 141  # what a shell reports for a command its pipe's reader left (128 + SIGPIPE)
    except (OSError, sqlite3.OperationalError) as exc:
        message = storage_error(exc, _root(args))
        if message is None:
            raise
        print(f"provision: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("provision: interrupted", file=sys.stderr)
        return 130


def exit_now(code: int) -> None:
    """Exit with `code`, skipping the interpreter's teardown when only this thread is left.

    Freeing the modules of an apply takes ~15 ms, a sixteenth of a no-op
    re-apply. Everything is written and committed by then (the job queue's
    SQLite transactions are durable when they return); with another thread
    still running, the normal exit waits for it as before.
    """
    if threading.active_count() > 1:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe (`provision … | head`): nothing more can be said on it
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
