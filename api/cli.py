"""`python -m api`: serve the API, manage its users, print client settings.

`add_parsers` adds the same commands to another parser: bin/provision wires
them as `provision serve|users|openrc|clouds-yaml`.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from api.accounts import set_user
from api.bootstrap import ADMIN, ensure_admin, password_path
from api.config import LISTEN_HOST as HOST
from api.config import config_path
from provisioner.errors import ProvisionError
from provisioner.images import ImageStore
from provisioner.layout import DEFAULT_ROOT, Layout, restrict_umask

COMMAND_NAMES = ("serve", "users", "openrc", "clouds-yaml")
# One process per CPU: a process's waitress threads share one interpreter lock, so more
# processes (sharing the socket) are what scale requests; each process also runs task threads.
DEFAULT_WORKERS = len(os.sched_getaffinity(0))


# A first `openstack server create` needs an image; `make run` imports none (a bootable one is a download).
NO_IMAGE_HINT = ("no image yet, so no server can be created: import one first, e.g. "
                 "`bin/provision image import https://…/some-cloud-image.qcow2 --name NAME` "
                 "(a URL or a local file; docs/images.md)")


def _layout(args: argparse.Namespace) -> Layout:
    root = getattr(args, "root", None) or Path(os.environ.get("PROVISION_ROOT") or DEFAULT_ROOT)
    return Layout(root.absolute())


def _auth_url(port: int) -> str:
    return f"http://{HOST}:{port}/identity"


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: bin/provision builds this parser on every run and must not pay for falcon and waitress.
    from api.server import serve

    layout = _layout(args)

    def listening(port: int) -> None:
        boot = ensure_admin(layout)
        if boot.created:
            print(f"created API user {ADMIN} (role admin on project admin); its password is in {boot.password_file}")
        if not ImageStore(layout).list():
            print(NO_IMAGE_HINT)
        print(f"Point the openstack CLI at this server: in another shell, paste\n"
              f"{openrc(port, ADMIN, ADMIN, boot.password_file)}\n"
              "then run e.g. `openstack server list`. Ctrl-C stops the server.\n", flush=True)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(layout, args.port, args.workers, args.threads, listening)
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    path = config_path(_layout(args))
    created = set_user(path, args.name, password, args.project, args.role or ["member"])
    print(f"{'created' if created else 'updated'} user {args.name} in {path}")
    bootstrapped = password_path(_layout(args))
    if args.name == ADMIN and bootstrapped.is_file():
        # The generated password no longer works: do not leave it where openrc and serve point.
        bootstrapped.unlink()
        print(f"removed {bootstrapped} (the generated password it held is replaced)")
    return 0


def openrc(port: int, user: str, project: str, password_file: Path | None = None) -> str:
    """OS_* exports for `user` in `project`; OS_PASSWORD read from `password_file` if given, else left to fill in."""
    password = (f'export OS_PASSWORD="$(cat {shlex.quote(str(password_file))})"' if password_file
                else f"# export OS_PASSWORD=…   ({user}'s password)")
    return (f"export OS_AUTH_URL={_auth_url(port)}\nexport OS_IDENTITY_API_VERSION=3\n"
            f"export OS_USERNAME={shlex.quote(user)}\nexport OS_PROJECT_NAME={shlex.quote(project)}\n"
            "export OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\n"
            f"export OS_REGION_NAME=RegionOne\n{password}")


def cmd_openrc(args: argparse.Namespace) -> int:
    bootstrapped = password_path(_layout(args))
    use_file = args.user == ADMIN and bootstrapped.is_file()
    print(openrc(args.port, args.user, args.project, bootstrapped if use_file else None))
    return 0


def cmd_clouds_yaml(args: argparse.Namespace) -> int:
    cloud = {"auth": {"auth_url": _auth_url(args.port), "username": args.user, "project_name": args.project,
                      "user_domain_name": "Default", "project_domain_name": "Default"},
             "region_name": "RegionOne", "identity_api_version": 3}
    print(yaml.safe_dump({"clouds": {args.cloud: cloud}}, sort_keys=False), end="")
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add serve, users set, openrc and clouds-yaml to `sub`; `common` adds the caller's shared options."""
    serve_p = sub.add_parser("serve", help=f"serve the OpenStack API on {HOST}")
    common(serve_p)
    serve_p.add_argument("--port", type=int, default=5000)
    serve_p.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                         help=f"processes sharing the listening socket (default: the CPUs this process may use, "
                              f"here {DEFAULT_WORKERS})")
    serve_p.add_argument("--threads", type=int, default=8, help="waitress threads per process")
    serve_p.set_defaults(func=cmd_serve)

    users_p = sub.add_parser("users", help="API users (hashed passwords in <root>/api/config.yaml)")
    actions = users_p.add_subparsers(dest="action", required=True)
    set_p = actions.add_parser("set", help="create a user or rotate its password")
    common(set_p)
    set_p.add_argument("name")
    set_p.add_argument("--project", required=True, help="project to grant roles on (created if missing)")
    set_p.add_argument("--role", action="append", help="role on the project (repeatable; default member)")
    set_p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    set_p.set_defaults(func=cmd_user)

    for name, func in (("openrc", cmd_openrc), ("clouds-yaml", cmd_clouds_yaml)):
        p = sub.add_parser(name, help=f"print {name} settings for the stock clients")
        common(p)
        p.add_argument("--port", type=int, default=5000)
        p.add_argument("--user", default="admin")
        p.add_argument("--project", default="admin")
        if name == "clouds-yaml":
            p.add_argument("--cloud", default="provisioner")
        p.set_defaults(func=func)


def _root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                        help=f"the engine's root (env PROVISION_ROOT; default {DEFAULT_ROOT})")


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m api`."""
    top = argparse.ArgumentParser(prog="python -m api", description=__doc__.splitlines()[0])
    _root_option(top)
    add_parsers(top.add_subparsers(dest="command", required=True), _root_option)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print their message and exit non-zero."""
    restrict_umask()
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
