"""The conformance tier end to end: a served root, tempest.conf, `tempest run`, a summary.

Used by tests/conformance/test_tempest.py (which asserts on the summary) and
bench/conformance.py (which prints it). Tempest runs from .venv-tempest
(`make test-deps`), against 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conformance.orphans import die_with_parent
from conformance.results import Summary, read_interop, summarise
from conformance.served import configure, max_microversion, public_network, serving, token, upload_image
from conformance.tempest_conf import Target, accounts, accounts_yaml, tempest_conf

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = REPO / ".venv-tempest"
INTEROP = HERE / "interop-2020.06-compute-required.txt"
EXCLUDE_LIST = HERE / "exclude-list.txt"
DEFAULT_REGEX = r"^tempest\.api\.(compute|identity\.v3|image\.v2|volume|network)\."
RUN_TIMEOUT = 3 * 3600  # seconds: a hung run must end; the CI budget is checked in docs/conformance.md
# Tempest logs every request: "Request (Class:test): 500 POST http://… 0.012s".
REQUEST_LINE = re.compile(r"Request \((?P<who>[^)]*)\): (?P<status>\d{3}) (?P<method>[A-Z]+) (?P<url>\S+)")


class TierError(RuntimeError):
    """The tier could not run (as opposed to tests failing); the message names the log to read."""


@dataclass(frozen=True)
class TierOptions:
    """Which tests and how: the regex, stestr workers, an exclude list (regexes with reasons), and the
    source tree that serves (default this checkout)."""

    regex: str = DEFAULT_REGEX
    concurrency: int = 2
    exclude_list: Path | None = EXCLUDE_LIST
    source: Path = REPO


def _venv(tool: str) -> str:
    path = VENV / "bin" / tool
    if not path.exists():
        raise TierError(f"{path} is missing: `make test-deps` builds .venv-tempest")
    return str(path)


def _tempest_env(home: Path) -> dict[str, str]:
    """The environment Tempest runs in: no OS_* settings, no proxy, a private HOME."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    return {**env, "HOME": str(home), "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}


def _stestr_conf(workspace: Path) -> None:
    """What `tempest init` writes, without registering a workspace under HOME."""
    site = Path(subprocess.run([_venv("python"), "-c", "import tempest, os; print(os.path.dirname(tempest.__file__))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / ".stestr.conf").write_text(
        f"[DEFAULT]\ntest_path={site / 'test_discover'}\ntop_dir={site.parent}\ngroup_regex=([^\\.]*\\.)*\n")


def list_tests(workspace: Path, options: TierOptions, env: dict[str, str]) -> list[str]:
    """The test ids the run selects (regex minus exclude list), as stestr lists them."""
    if not (workspace / ".stestr").is_dir():
        subprocess.run([_venv("stestr"), "init"], cwd=workspace, env=env, check=True, capture_output=True)
    exclude = ["--exclude-list", str(options.exclude_list)] if options.exclude_list else []
    done = subprocess.run([_venv("stestr"), "list", *exclude, options.regex], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise TierError(f"stestr list failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return [line for line in done.stdout.splitlines() if line.startswith("tempest.")]


def run_tempest(workspace: Path, conf: Path, options: TierOptions, env: dict[str, str], out: Path) -> float:
    """`tempest run`; its output to `out`; the wall time in seconds. Failing tests are not an error here."""
    exclude = ["--exclude-list", str(options.exclude_list)] if options.exclude_list else []
    started = time.monotonic()
    with out.open("w") as stream:
        subprocess.run([_venv("tempest"), "run", "--config-file", str(conf), "--regex", options.regex,
                        "--concurrency", str(options.concurrency), *exclude],
                       cwd=workspace, env=env, stdout=stream, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT,
                       preexec_fn=die_with_parent)
    return time.monotonic() - started


def read_results(workspace: Path, env: dict[str, str]) -> list[dict]:
    """The last run's per-test results (via subunit_dump.py in the Tempest venv)."""
    stream = subprocess.run([_venv("stestr"), "last", "--subunit"], cwd=workspace, env=env,
                            capture_output=True, timeout=600)
    dumped = subprocess.run([_venv("python"), str(HERE / "subunit_dump.py")], input=stream.stdout,
                            capture_output=True, timeout=600)
    if dumped.returncode != 0:
        raise TierError(f"reading the subunit results failed: {dumped.stderr.decode()[-2000:]}")
    return [json.loads(line) for line in dumped.stdout.decode().splitlines() if line.strip()]


def server_errors(tempest_log: Path, server_log: Path) -> list[str]:
    """Every 5xx Tempest received, and every unhandled error the server logged."""
    found = []
    if tempest_log.is_file():
        for line in tempest_log.read_text(errors="replace").splitlines():
            match = REQUEST_LINE.search(line)
            if match and match.group("status").startswith("5"):
                found.append(f"{match.group('status')} {match.group('method')} {match.group('url')} "
                             f"({match.group('who')})")
    found += [line.strip()[:300] for line in server_log.read_text(errors="replace").splitlines()
              if "unhandled error on" in line]
    return found


def foreign_requests(tempest_log: Path) -> list[str]:
    """Requests Tempest sent anywhere but 127.0.0.1 (there must be none)."""
    if not tempest_log.is_file():
        return []
    return [m.group("url") for m in map(REQUEST_LINE.search, tempest_log.read_text(errors="replace").splitlines())
            if m and not m.group("url").startswith("http://127.0.0.1:")]


def _qcow2(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def run_tier(workdir: Path, options: TierOptions = TierOptions()) -> Summary:
    """Serve a new root under `workdir`, run Tempest against it, and summarise (also into workdir/summary.json)."""
    root, logs, workspace = workdir / "root", workdir / "logs", workdir / "tempest"
    logs.mkdir(parents=True, exist_ok=True)
    env = _tempest_env(workdir)
    _stestr_conf(workspace)
    users = accounts()
    configure(root, users)
    listed = list_tests(workspace, options, env)
    tempest_log = logs / "tempest.log"
    with serving(root, logs, options.source) as served:
        admin = token(served.url, next(u for u in users if u.admin))
        image = _qcow2(workdir / "image.qcow2")
        target = Target(url=served.url, image_ref=upload_image(served.url, admin, "conformance-image", image),
                        image_ref_alt=upload_image(served.url, admin, "conformance-image-alt", image),
                        accounts_file=str(workspace / "etc" / "accounts.yaml"), log_file=str(tempest_log),
                        lock_path=str(workdir / "locks"),
                        compute_max_microversion=max_microversion(served.url, "/compute/v2.1"),
                        volume_max_microversion=max_microversion(served.url, "/volume/v3"),
                        public_network_id=public_network(served.url, admin))
        (workspace / "etc").mkdir(exist_ok=True)
        (workspace / "etc" / "accounts.yaml").write_text(accounts_yaml(users))
        conf = workspace / "etc" / "tempest.conf"
        conf.write_text(tempest_conf(target))
        seconds = run_tempest(workspace, conf, options, env, logs / "tempest-run.out")
        server_log = served.log
    results = read_results(workspace, env)
    if not results:
        raise TierError(f"Tempest recorded no results: see {logs / 'tempest-run.out'}")
    run = {"tempest": "47.0.0", "regex": options.regex, "concurrency": options.concurrency,
           "exclude_list": str(options.exclude_list) if options.exclude_list else None,
           "seconds": round(seconds), "listed": len(listed), "foreign_requests": foreign_requests(tempest_log)}
    summary = summarise(listed, results, read_interop(INTEROP), server_errors(tempest_log, server_log), run)
    (workdir / "summary.json").write_text(json.dumps(summary.to_json(), indent=1) + "\n")
    return summary

