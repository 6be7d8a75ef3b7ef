"""Running the real terraform binary against the embedded provider, for tests and bench."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"


def terraform_env(cli_config: Path) -> dict[str, str]:
    """Environment for terraform: our CLI config, no prompts, no checkpoint calls."""
    env = dict(os.environ)
    env.update(TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0",
               CHECKPOINT_DISABLE="1")
    env.pop("TF_LOG", None)
    return env


@dataclass
class Workspace:
    """One Terraform working directory."""

    dir: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `terraform ARGS` here; raise with its output when it fails and `check`."""
        proc = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen:
        """Start `terraform ARGS` in the background (its own process group)."""
        return subprocess.Popen([TERRAFORM, *args, "-no-color"], cwd=self.dir, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    def init(self) -> None:
        """terraform init (offline, from the mirror)."""
        self.run("init", "-input=false")

    def apply(self) -> subprocess.CompletedProcess:
        """terraform apply -auto-approve."""
        return self.run("apply", "-auto-approve", "-input=false")

    def destroy(self) -> subprocess.CompletedProcess:
        """terraform destroy -auto-approve."""
        return self.run("destroy", "-auto-approve", "-input=false")

    def plan_exitcode(self) -> tuple[int, str]:
        """`terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error."""
        proc = self.run("plan", "-detailed-exitcode", "-input=false", check=False)
        return proc.returncode, proc.stdout + proc.stderr


def provider_header(uri: str) -> str:
    """The terraform and provider blocks every plan of these tests starts with."""
    return f'''terraform {{
  required_providers {{
    libvirt = {{
      source  = "dmacvicar/libvirt"
      version = "0.9.7"
    }}
  }}
}}
provider "libvirt" {{
  uri = "{uri}"
}}
'''


def pool_block(name: str, path: Path) -> str:
    """A `libvirt_pool.pool` directory pool named `name` at `path`."""
    return f'''resource "libvirt_pool" "pool" {{
  name   = "{name}"
  type   = "dir"
  target = {{ path = "{path}" }}
}}
'''


def shared_plan(uri: str, pool_dir: Path, image_url: str) -> str:
    """The shared workspace's main.tf, as the project's templates render it."""
    return (provider_header(uri) + pool_block("provisioner", pool_dir)
            + f'''resource "libvirt_volume" "base_debian_12_0123456789ab" {{
  name   = "base-debian-12-0123456789ab.qcow2"
  pool   = libvirt_pool.pool.name
  target = {{ format = {{ type = "qcow2" }} }}
  create = {{ content = {{ url = "{image_url}" }} }}
}}
''')


def domain_plan(uri: str, name: str, pool_dir: Path, seed: Path, *, memory: int = 1024,
                capacity: int = 10737418240, running: bool = True) -> str:
    """A domain workspace's main.tf, as the project's templates render it."""
    return provider_header(uri) + f'''resource "libvirt_volume" "disk" {{
  name     = "{name}-disk-0123456789ab.qcow2"
  pool     = "provisioner"
  capacity = {capacity}
  target   = {{ format = {{ type = "qcow2" }} }}
  backing_store = {{
    path   = "{pool_dir}/base-debian-12-0123456789ab.qcow2"
    format = {{ type = "qcow2" }}
  }}
}}
resource "libvirt_volume" "seed" {{
  name = "{name}-seed-0123456789ab.iso"
  pool = "provisioner"
  target = {{
    format      = {{ type = "raw" }}
    permissions = {{ mode = "0600" }}
  }}
  create = {{ content = {{ url = "{seed}" }} }}
}}
resource "libvirt_domain" "guest" {{
  name        = "{name}"
  type        = "qemu"
  description = "provisioned by provisioner"
  memory      = {memory}
  memory_unit = "MiB"
  vcpu        = 2
  running     = {"true" if running else "false"}
  autostart   = false
  cpu = {{ mode = "host-model" }}
  os = {{
    type         = "hvm"
    type_arch    = "x86_64"
    type_machine = "q35"
    boot_devices = [{{ dev = "hd" }}]
  }}
  devices = {{
    disks = [
      {{
        device = "disk"
        source = {{ volume = {{ pool = libvirt_volume.disk.pool, volume = libvirt_volume.disk.name }} }}
        target = {{ dev = "vda", bus = "virtio" }}
        driver = {{ name = "qemu", type = "qcow2" }}
      }},
      {{
        device    = "cdrom"
        read_only = true
        source = {{ volume = {{ pool = libvirt_volume.seed.pool, volume = libvirt_volume.seed.name }} }}
        target = {{ dev = "sda", bus = "sata" }}
        driver = {{ name = "qemu", type = "raw" }}
      }},
    ]
    interfaces = [
      {{
        mac    = {{ address = "52:54:00:ab:cd:ef" }}
        model  = {{ type = "virtio" }}
        source = {{ bridge = {{ bridge = "br0" }} }}
      }},
    ]
    serials  = [{{ target = {{ port = 0 }} }}]
    consoles = [{{ target = {{ type = "serial", port = 0 }} }}]
  }}
}}
'''
