"""Validating a tenant's #cloud-config against cloud-init's schema: in process or through `cloud-init schema`.

Two ways to run cloud-init's own validation per `POST /servers`:

1. in process (provisioner/spec/cloudconfig.py): jsonschema_rs over Debian's
   schema-cloud-config-v1.json, compiled once; the whole read_user_data
   (YAML load, owned keys, user checks, schema) is timed too;
2. `cloud-init schema --config-file FILE` in a subprocess per request.

Prints the median seconds per validation of each (a juju-like cloud-config:
write_files, runcmd, packages, users; and a 48 KB one) and their ratio.

Run: .venv/bin/python bench/cloud_config_validate.py [--runs 21]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.yaml_loader import valid_cloud_config  # noqa: E402
from provisioner import safeyaml  # noqa: E402
from provisioner.spec.cloudconfig import read_user_data, schema_validator  # noqa: E402

JUJU_LIKE = """#cloud-config
package_update: true
package_upgrade: false
packages: [curl, cpu-checker, bridge-utils, tmux, ubuntu-fan]
bootcmd:
  - install -D -m 644 /dev/null '/etc/juju-proxy.conf'
runcmd:
  - set -xe
  - mkdir -p /var/lib/juju/agents/machine-0
  - [sh, -c, "curl -sSfw 'agent binaries from %{url_effective} downloaded' -o /tmp/tools.tar.gz http://127.0.0.1/tools"]
  - tar zxf /tmp/tools.tar.gz -C /var/lib/juju/tools/3.1.6
write_files:
  - path: /var/lib/juju/agents/machine-0/agent.conf
    permissions: '0600'
    content: |
      tag: machine-0
      datadir: /var/lib/juju
  - path: /etc/systemd/system/jujud-machine-0.service
    content: |
      [Service]
      ExecStart=/var/lib/juju/init/jujud-machine-0/exec-start.sh
users:
  - name: ubuntu
    groups: [adm, sudo]
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN0dkx3isMvky47klZ+VCnvfUtxDAxpoWyHDLtFXb/nl juju-client-key
"""


def median(runs: int, action: Callable[[], object]) -> float:
    """Median wall seconds of `action` over `runs` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    validator, cli = schema_validator(), shutil.which("cloud-init")
    if validator is None or cli is None:
        sys.exit("cloud-init (its schema and its CLI) is needed: bin/install-deps --test")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in (("juju-like", JUJU_LIKE), ("48 KB users", valid_cloud_config())):
            path = Path(tmp) / "user-data"
            path.write_text(text)
            doc = safeyaml.load(text)
            schema = median(args.runs, lambda: list(validator.iter_errors(doc)))
            whole = median(args.runs, lambda: read_user_data(text.encode(), "user_data", "root"))
            process = median(max(3, args.runs // 3), lambda: subprocess.run(
                [cli, "schema", "--config-file", str(path)], check=True, capture_output=True))
            print(f"{name} ({len(text)} chars): schema in process {schema * 1e3:.3f} ms, "
                  f"read_user_data {whole * 1e3:.3f} ms, `cloud-init schema` {process * 1e3:.1f} ms, "
                  f"ratio subprocess/in-process schema {process / schema:.0f}x")


if __name__ == "__main__":
    main()
