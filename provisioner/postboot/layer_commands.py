"""What a layer job runs on the machine it layers a domain onto: cloud-init's own
modules on a pushed cloud-config, and the domain's addresses added to the network.
Pure functions: every value is quoted with shlex.quote.

Both need root. The login user is root, or gets root through passwordless
`sudo -n` (what cloud-init grants a non-root admin_user). On a machine without
sudo the commands run as the login user and fail with their own permission error.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Sequence

CONFIG_NAME = "layer.cfg"
# Module names as `cloud-init single --name` takes them (cloud-init 22.4, Debian 12).
USERS_MODULE = "users_groups"
PACKAGES_MODULE = "package_update_upgrade_install"
INTERFACES_DIR = PurePosixPath("/etc/network/interfaces.d")
q = shlex.quote

_AS_ROOT = ('as_root() { if [ "$(id -u)" -eq 0 ] || ! command -v sudo >/dev/null 2>&1; then "$@"; '
            'else sudo -n "$@"; fi; }; ')


def cloud_init_command(config: PurePosixPath, packages: bool) -> str:
    """Apply the cloud-config at `config` with cloud-init's users module (and, with `packages`, its package module).

    `--file` is cloud-init's global option (before `single`): its settings
    override the machine's own user-data, and `--frequency always` runs a
    module again although it already ran for this instance.
    """
    modules = [USERS_MODULE, *([PACKAGES_MODULE] if packages else [])]
    runs = " && ".join(f"as_root cloud-init --file {q(str(config))} single --name {module} --frequency always"
                       for module in modules)
    return f"{_AS_ROOT}{{ {runs}; }} 2>&1"


def interfaces_file(domain: str) -> PurePosixPath:
    """The domain's ifupdown file (run-parts-safe name: `.` becomes `_`, which no domain name holds)."""
    return INTERFACES_DIR / f"60-provisioner-{domain.replace('.', '_')}"


def network_command(domain: str, addresses: Sequence[str]) -> str:
    """Add `addresses` (`a.b.c.d/prefix`) to the interface holding the IPv4 default route, now and at boot.

    Now: `ip addr replace` (idempotent). At boot: one `iface DEV inet static`
    stanza per address in /etc/network/interfaces.d/ (ifupdown applies every
    stanza of an interface), written only when the machine uses ifupdown and
    sources that directory; otherwise the output says the addresses last until
    the next reboot.
    """
    path = interfaces_file(domain)
    tmp = path.with_name(f".{path.name}.tmp")
    listed = " ".join(q(a) for a in addresses)
    script = f"""set -eu
dev=$(ip -4 route show default | awk '{{for (i = 1; i < NF; i++) if ($i == "dev") {{ print $(i + 1); exit }}}}')
if [ -z "$dev" ]; then
    echo "no IPv4 default route on the machine: cannot tell which interface gets the addresses" >&2
    exit 3
fi
for address in {listed}; do
    ip addr replace "$address" dev "$dev"
    echo "added $address to $dev"
done
if grep -Eqs '^[[:space:]]*source(-directory)?[[:space:]]+{INTERFACES_DIR}' /etc/network/interfaces; then
    mkdir -p {INTERFACES_DIR}
    {{
        printf '# provisioner: addresses of the layered domain %s\\n' {q(domain)}
        for address in {listed}; do
            printf 'iface %s inet static\\n    address %s\\n\\n' "$dev" "$address"
        done
    }} >{q(str(tmp))}
    mv -f {q(str(tmp))} {q(str(path))}
    echo "kept for the next boots in {path}"
else
    echo "warning: the machine does not use ifupdown with {INTERFACES_DIR}: the addresses last until the next reboot"
fi
"""
    return f"{_AS_ROOT}as_root sh -c {q(script)} 2>&1"
