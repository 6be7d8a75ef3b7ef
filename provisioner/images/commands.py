"""`provision image …`: import, list, prune, sync and delete base images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from provisioner.errors import InputError, ProvisionError
from provisioner.images.digests import ALGORITHMS
from provisioner.images.errors import ImageError
from provisioner.images.listfile import BadLine, parse_list
from provisioner.images.names import check_name, default_name
from provisioner.images.records import ImageRecord
from provisioner.images.store import ImageStore
from provisioner.layout import Layout
from provisioner.progress import Progress, human_size

Handler = Callable[[argparse.Namespace, Layout, Progress], int]


def add_image_parser(subparsers: argparse._SubParsersAction,
                     common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Add `image` and its actions to `subparsers`; each sets `image_handler` (see run)."""
    help_text = "manage base images: import (checksum-verified), list, prune, sync, delete"
    image = subparsers.add_parser("image", help=help_text, description=help_text)
    common(image)
    image.set_defaults(image_handler=_usage(image))
    actions = image.add_subparsers(dest="image_action", metavar="ACTION")

    def action(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=text, description=text)
        common(parser)
        parser.set_defaults(image_handler=handler)
        return parser

    parser = action("import", cmd_import, "import a base image from a local file or an http(s) URL, "
                                          "verified against every digest given")
    parser.add_argument("source", metavar="SOURCE", help="local file or http(s) URL")
    parser.add_argument("--name", help="image name (default: the file name without .qcow2/.img/.raw)")
    for algorithm in ALGORITHMS:
        parser.add_argument(f"--{algorithm}", metavar="HEX", help=f"expected {algorithm} digest")
    parser.add_argument("--dry-run", action="store_true", help="download and verify, import nothing")

    parser = action("list", cmd_list, "list images and their versions (* marks the current one; a version "
                                      "whose file is gone gets a MISSING line with the command that reimports it)")
    parser.add_argument("name", metavar="NAME", nargs="?", help="only this image")
    parser.add_argument("--json", action="store_true", help="machine-readable output")

    parser = action("prune", cmd_prune, "delete old versions of an image; versions in use always stay")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--keep", type=int, required=True, metavar="N",
                        help="how many of the newest versions to keep (at least 1)")

    parser = action("sync", cmd_sync, "import or refresh every image of a list file (one source per line, "
                                      "optional name=… md5=… sha1=… sha256=… sha512=…, # comments); "
                                      "one line per image, exit status 1 if any failed")
    parser.add_argument("list_file", metavar="LIST_FILE", type=Path)

    parser = action("delete", cmd_delete, "delete a version (by id) or all versions of an image "
                                          "(by name); refused while any is in use")
    parser.add_argument("target", metavar="ID_OR_NAME")
    return image


def run(args: argparse.Namespace, layout: Layout, progress: Progress | None = None) -> int:
    """Run the image action `args` was parsed for; `progress` shows transfers (None: not shown)."""
    handler: Handler = args.image_handler
    return handler(args, layout, progress or Progress(quiet=True))


def _usage(parser: argparse.ArgumentParser) -> Handler:
    def usage(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
        parser.print_help()
        return 2
    return usage


def cmd_import(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
    """provision image import SOURCE [--name NAME] [--md5 …] [--sha1 …] [--sha256 …] [--sha512 …] [--dry-run]"""
    store = ImageStore(layout)
    name = default_name(args.source) if args.name is None else check_name(args.name)
    digests = {a: getattr(args, a) for a in ALGORITHMS if getattr(args, a) is not None}
    before = store.lookup(name)
    record = store.import_source(args.source, name, digests, dry_run=args.dry_run, progress=progress)
    unchanged = before is not None and before.id == record.id
    if args.dry_run:
        outcome = "unchanged" if unchanged else f"would be version {record.version}"
        print(f"{name}: verified {_describe(record)}; dry run, nothing imported ({outcome})")
    elif unchanged and before.missing:
        print(f"{name}: restored version {record.version}'s missing file ({_describe(record)}) as {record.path}")
    elif unchanged:
        print(f"{name}: unchanged, version {record.version} already has this content ({_describe(record)})")
    else:
        print(f"{name}: imported version {record.version} ({_describe(record)}) as {record.path}, id {record.id}")
    return 0


def cmd_list(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
    """provision image list [NAME] [--json]"""
    store = ImageStore(layout)
    records = store.versions(args.name) if args.name else store.list()
    used_by = store.used_by()
    if args.json:
        print(json.dumps([{**r.to_json(), "path": str(r.path), "current": r.current, "missing": r.missing,
                           "used_by": used_by.get(r.id, [])} for r in records], indent=2))
        return 0
    print(f"{'NAME':24} {'VERSION':>7} {'FORMAT':6} {'SIZE':>10} {'IMPORTED':20} {'SHA256':12} "
          f"{'ID':36} USED BY")
    for r in records:
        version = f"{r.version}{'*' if r.current else ' '}"
        print(f"{r.name:24} {version:>7} {r.format:6} {human_size(r.size):>10} {r.imported_at:20} "
              f"{r.sha256[:12]:12} {r.id:36} {', '.join(used_by.get(r.id, [])) or '-'}")
    for r in records:
        if r.missing:
            print(f"MISSING {r.name} version {r.version}: {r.path} is gone; reimport it with: "
                  f"{r.reimport_command()}")
    return 0


def cmd_prune(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
    """provision image prune NAME --keep N"""
    store = ImageStore(layout)
    removed = store.prune(args.name, args.keep)
    for r in removed:
        print(f"{r.name}: removed version {r.version} ({r.path.name}, id {r.id})")
    used_by = store.used_by()
    versions = store.versions(args.name)
    for r in versions[:-args.keep]:
        print(f"{r.name}: kept version {r.version}: in use by {', '.join(used_by.get(r.id, ['?']))}")
    if not removed:
        print(f"{args.name}: nothing to prune ({len(versions)} version(s) kept)")
    return 0


def cmd_delete(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
    """provision image delete ID_OR_NAME"""
    for r in ImageStore(layout).delete(args.target):
        print(f"{r.name}: deleted version {r.version} ({r.path.name}, id {r.id})")
    return 0


def cmd_sync(args: argparse.Namespace, layout: Layout, progress: Progress) -> int:
    """provision image sync LIST_FILE: one `ok`/`FAILED` line per image; 1 if any failed."""
    store = ImageStore(layout)
    failed = 0
    for entry in parse_list(args.list_file):
        if isinstance(entry, BadLine):
            failed += 1
            print(f"FAILED  {entry.label}: {entry.where}: {entry.reason}", flush=True)
            continue
        try:
            before = store.lookup(entry.name)
            record = store.import_source(entry.source, entry.name, entry.digests, progress=progress)
        except ProvisionError as exc:
            failed += 1
            print(f"FAILED  {entry.name}: {_reason(exc)}", flush=True)
            continue
        if before is not None and before.id == record.id and before.missing:
            print(f"ok      {entry.name}: restored version {record.version}'s missing file ({_describe(record)})",
                  flush=True)
        elif before is not None and before.id == record.id:
            print(f"ok      {entry.name}: unchanged (version {record.version}, {_describe(record)})", flush=True)
        else:
            print(f"ok      {entry.name}: imported version {record.version} ({_describe(record)})", flush=True)
    return 1 if failed else 0


def _reason(exc: ProvisionError) -> str:
    if isinstance(exc, ImageError):
        return exc.reason
    if isinstance(exc, InputError):
        return f"{exc.where}: {exc.message}" if exc.where else exc.message
    return str(exc)


def _describe(record: ImageRecord) -> str:
    return f"{record.format}, {human_size(record.size)}, sha256 {record.sha256[:12]}…"
