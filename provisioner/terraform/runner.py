"""Terraform commands through python-terraform, with our environment and logging.

python-terraform builds the command lines (its flag conventions); the process
is run here because python-terraform can only inherit os.environ (we need a
per-run TF_CLI_CONFIG_FILE, which must not leak into other threads) and
buffers output (we stream it into the workspace's log file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, Terraform

from provisioner.errors import ProvisionError

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

    def __init__(self, workdir: Path, cli_config: Path, log: Path):
        self.workdir = workdir
        self.log = log
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        self._terraform = _CommandLine(working_dir=str(workdir), terraform_bin_path=terraform_binary())

    def run(self, command: str, *args: str, check: bool = True, ok_codes: tuple[int, ...] = (0,),
            **flags: Any) -> Result:
        """Run `terraform COMMAND` with python-terraform style flags (no_color=FLAG, …)."""
        argv = self._terraform.generate_cmd_string(command, *args, no_color=FLAG, **flags)
        self.log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = time.monotonic()
        with open(self.log, "ab") as log:
            log.write(f"\n### {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(argv)}\n".encode())
            log.flush()
            begin = os.fstat(log.fileno()).st_size
            # stdout streams into the log as it comes (tail -f works) and is read back after.
            with subprocess.Popen(argv, cwd=self.workdir, env=self.env, stdout=log,
                                  stderr=subprocess.PIPE) as process:
                _, err = process.communicate()
            end = os.fstat(log.fileno()).st_size
            if err:
                log.write(b"--- stderr\n" + err)
            log.write(f"### exit {process.returncode} after {time.monotonic() - start:.2f}s\n".encode())
        with open(self.log, "rb") as log:
            log.seek(begin)
            stdout = log.read(end - begin).decode(errors="replace")
        result = Result(argv, process.returncode, stdout, err.decode(errors="replace"))
        if check and result.returncode not in ok_codes:
            raise TerraformError(result, self.log)
        return result
