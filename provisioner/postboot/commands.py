"""`provision jobs [cancel ID | show ID]` and `provision worker`: the queue from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from provisioner.postboot.job import log_path
from provisioner.postboot.queue import JobRecord, queue_for
from provisioner.postboot.settings import PostbootSettings
from provisioner.postboot.worker import run_worker

COMMAND_NAMES = ("jobs", "worker")

# cli.py's Context factory: whatever it returns has `.layout` and `.progress`.
ContextFactory = Callable[[argparse.Namespace], Any]


def add_parsers(subparsers: Any, common: Callable[[argparse.ArgumentParser], None],
                context: ContextFactory) -> None:
    """Add `jobs` and `worker` to the CLI's subparsers.

    `common` adds the common options (--root, -q, …) to a parser; `context`
    turns parsed arguments into the CLI's Context.
    """
    jobs_help = "list post-boot jobs (queued, running, finished), like atq; `jobs cancel ID`, `jobs show ID`"
    jobs = subparsers.add_parser("jobs", help=jobs_help, description=jobs_help)
    common(jobs)
    jobs.add_argument("--json", action="store_true", help="machine-readable output")
    jobs.add_argument("--domain", metavar="DOMAIN", help="only this domain's jobs")
    jobs.set_defaults(func=lambda args: cmd_jobs(args, context))
    actions = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    cancel_help = "remove a queued job, like atrm (a running job cannot be cancelled)"
    cancel = actions.add_parser("cancel", help=cancel_help, description=cancel_help)
    common(cancel)
    cancel.add_argument("job_id", metavar="ID", type=int)
    cancel.set_defaults(func=lambda args: cmd_jobs_cancel(args, context))
    show_help = "print a job's details and its log"
    show = actions.add_parser("show", help=show_help, description=show_help)
    common(show)
    show.add_argument("job_id", metavar="ID", type=int)
    show.set_defaults(func=lambda args: cmd_jobs_show(args, context))

    worker_help = ("run queued post-boot jobs in the foreground until interrupted (resuming jobs whose "
                   "worker died); timeouts come from PROVISION_POSTBOOT_* variables")
    worker = subparsers.add_parser("worker", help=worker_help, description=worker_help)
    common(worker)
    worker.add_argument("--drain", action="store_true", help="exit once the queue is empty")
    worker.set_defaults(func=lambda args: cmd_worker(args, context))


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def cmd_jobs(args: argparse.Namespace, context: ContextFactory) -> int:
    """List jobs, oldest first."""
    ctx = context(args)
    records = queue_for(ctx.layout, PostbootSettings.from_env()).list(domain=args.domain)
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    print(f"{'ID':>5} {'STATE':9} {'STEP':10} {'DOMAIN':30} {'QUEUED':19} {'EXIT':>4} MESSAGE")
    for r in records:
        exit_code = "-" if r.exit_code is None else str(r.exit_code)
        print(f"{r.id:>5} {r.state:9} {r.step or '-':10} {r.domain:30} {_when(r.created):19} {exit_code:>4} "
              f"{(r.message or '').splitlines()[0] if r.message else ''}")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace, context: ContextFactory) -> int:
    """Cancel a queued job."""
    ctx = context(args)
    record = queue_for(ctx.layout, PostbootSettings.from_env()).cancel(args.job_id)
    print(f"job {record.id} ({record.domain}): cancelled")
    return 0


def cmd_jobs_show(args: argparse.Namespace, context: ContextFactory) -> int:
    """Print one job and its log."""
    ctx = context(args)
    record = queue_for(ctx.layout, PostbootSettings.from_env()).get(args.job_id)
    print(describe(record))
    # A running job's log already exists; its path is recorded when the job finishes.
    path = Path(record.log_path) if record.log_path else log_path(record)
    if path.is_file():
        print(f"--- {path}")
        print(path.read_text(errors="replace"), end="")
    return 0


def describe(record: JobRecord) -> str:
    """A job's fields, one per line."""
    lines = [
        f"job {record.id}: {record.kind} for {record.domain}",
        f"state:    {record.state}" + (f" (step {record.step})" if record.step else ""),
        f"attempts: {record.attempts}",
        f"queued:   {_when(record.created)}",
        f"started:  {_when(record.started)}",
        f"finished: {_when(record.finished)}",
    ]
    if record.exit_code is not None:
        lines.append(f"exit:     {record.exit_code}")
    if record.message:
        lines.append(f"message:  {record.message}")
    lines.append(f"log:      {record.log_path or '-'}")
    return "\n".join(lines)


def cmd_worker(args: argparse.Namespace, context: ContextFactory) -> int:
    """Run queued jobs in the foreground."""
    ctx = context(args)
    ctx.progress.say(f"worker: running post-boot jobs queued in {ctx.layout.state_db}"
                     f"{' until the queue is empty' if args.drain else ' (Ctrl-C to stop)'}")
    ran = run_worker(ctx.layout, PostbootSettings.from_env(), ctx.progress, drain=args.drain)
    ctx.progress.say(f"worker: ran {ran} job(s)")
    return 0
