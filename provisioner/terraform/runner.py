"""Terraform commands through python-terraform, with our environment and logging.

python-terraform builds the command lines (its flag conventions); the process
is run here because python-terraform can only inherit os.environ (we need a
per-run TF_CLI_CONFIG_FILE, which must not leak into other threads) and
buffers output (we stream it into the workspace's log file).

With the embedded provider, every command but `init` attaches to the warm
provider (reattach.py) when it is up; `init` always runs as before, so the
lock file records the mirror's package whatever happens later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from python_terraform import IsFlagged, Terraform

from provisioner.errors import ProvisionError
from provisioner.provider.mirror import CLI_CONFIG_NAME
from provisioner.terraform import reattach

FLAG = IsFlagged


@dataclass(frozen=True)
class Result:
    """A finished terraform command."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class TerraformError(ProvisionError):
    """A terraform command failed; the message carries Terraform's own error."""

    def __init__(self, result: Result, log: Path):
        detail = _errors(result.stderr) or result.stderr.strip() or result.stdout.strip()[-2000:]
        super().__init__(f"terraform {result.argv[1]} failed (exit {result.returncode}); log: {log}\n{detail}")
        self.result = result


def _errors(stderr: str) -> str:
    """Terraform's `Error:` blocks (what a user needs), without the box drawing."""
    lines = [line.lstrip("│╷╵ ").rstrip() for line in stderr.splitlines()]
    return "\n".join(line for line in lines if line).strip()


class WarmProviderStopped(ProvisionError):
    """The warm provider stopped during a command that a provider of our own cannot simply run again."""


class _CommandLine(Terraform):
    """python-terraform as a command-line builder.

    Its constructor parses terraform.tfstate and fails on the empty file a
    killed apply leaves behind; state is read by Workspace instead.
    """

    def read_state_file(self, file_path: str | None = None) -> None:  # noqa: ARG002 - python-terraform's signature
        return None


def terraform_binary() -> str:
    """The terraform on PATH, or a clear error saying how to get it."""
    path = shutil.which("terraform")
    if not path:
        raise ProvisionError("terraform not found on PATH: run `make run` (bin/install-deps) or install "
                             "Terraform 1.5+ from HashiCorp's apt repository")
    return path


class Runner:
    """Runs terraform in one working directory, appending everything to a log."""

    def __init__(self, workdir: Path, cli_config: Path, log: Path, extra_env: dict[str, str] | None = None):
        self.workdir = workdir
        self.log = log
        # The embedded provider's CLI config (not upstream's): that provider can be kept warm.
        self._warm_root = cli_config.parent if cli_config.name == CLI_CONFIG_NAME else None
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            **(extra_env or {}),
        }
        self._terraform = _CommandLine(working_dir=str(workdir), terraform_bin_path=terraform_binary())
        # Set while `terraform init` is put off (Workspace.init): run before the first command without the
        # warm provider.
        self.before_cold: Callable[[], None] | None = None

    def attachable(self) -> bool:
        """Whether the next command will run attached to the warm provider."""
        return self._warm() is not None

    def _warm(self) -> reattach.WarmProvider | None:
        return reattach.ensure(self._warm_root) if self._warm_root is not None else None

    def run(self, command: str, *args: str, check: bool = True, ok_codes: tuple[int, ...] = (0,),
            again: bool = True, **flags: Any) -> Result:
        """Run `terraform COMMAND` with python-terraform style flags (no_color=FLAG, …).

        If the warm provider stops during the command, it runs again with a
        provider of its own; with `again` False (a saved plan made with the
        warm provider, which no other provider may apply) WarmProviderStopped
        is raised instead.
        """
        argv = self._terraform.generate_cmd_string(command, *args, no_color=FLAG, **flags)
        warm = self._warm() if command != "init" else None
        if warm is None:
            self._ready_cold()
        result = self._run(argv, warm)
        if result.returncode not in ok_codes and warm is not None and not warm.alive():
            if not again:
                raise WarmProviderStopped(f"the warm provider (pid {warm.pid}) stopped during terraform {command}")
            reattach.warn(f"the warm provider (pid {warm.pid}) stopped during terraform {command}: "
                          "running it again with a provider of its own")
            self._ready_cold()
            result = self._run(argv, None)
        if check and result.returncode not in ok_codes:
            raise TerraformError(result, self.log)
        return result

    def _ready_cold(self) -> None:
        """Run the put-off `terraform init`, once, before a command that starts its own provider."""
        init, self.before_cold = self.before_cold, None
        if init is not None:
            init()

    def _run(self, argv: list[str], warm: reattach.WarmProvider | None) -> Result:
        """One terraform process, attached to `warm` if given, logged."""
        env = self.env if warm is None else {**self.env, reattach.REATTACH_ENV: warm.reattach()}
        self.log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = time.monotonic()
        attached = "" if warm is None else f"  (warm provider pid {warm.pid})"
        with open(self.log, "ab") as log:
            log.write(f"\n### {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(argv)}{attached}\n".encode())
            log.flush()
            begin = os.fstat(log.fileno()).st_size
            # stdout streams into the log as it comes (tail -f works) and is read back after.
            with subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=log,
                                  stderr=subprocess.PIPE) as process:
                _, err = process.communicate()
            end = os.fstat(log.fileno()).st_size
            if err:
                log.write(b"--- stderr\n" + err)
            log.write(f"### exit {process.returncode} after {time.monotonic() - start:.2f}s\n".encode())
        with open(self.log, "rb") as log:
            log.seek(begin)
            stdout = log.read(end - begin).decode(errors="replace")
        return Result(argv, process.returncode, stdout, err.decode(errors="replace"))
