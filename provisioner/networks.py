"""Terraform-managed libvirt networks: one workspace per network, owned by no domain.

A network created through the API (Neutron `network create`) is a
`libvirt_network` in its own workspace, `<root>/networks/<name>/terraform/`,
applied and destroyed like a domain's. The same network on another
hypervisor is another workspace, `<root>/networks/<name>@<hypervisor>/`:
the libvirt network has the same name and bridge on each hypervisor. Domains refer to it by name only, so
destroying a domain never touches it. Rendering is pure (`render_network_plan`);
`apply_network` and `destroy_network` are the side effects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import InputError, ProvisionError
from provisioner.layout import Layout
from provisioner.pipeline import Context, apply_standalone, destroy_standalone
from provisioner.provider.errors import ProviderError
from provisioner.provider.hypervisor import Hypervisor
from provisioner.render.hcl import hcl
from provisioner.render.plan import PROVIDER_SOURCE, PROVIDER_VERSION
from provisioner.templates import environment

# libvirt forward modes a site may choose; None (no <forward>) is an isolated network.
FORWARD_MODES = ("nat", "route", "open")
# Linux interface names are at most 15 bytes (IFNAMSIZ 16, with the NUL).
MAX_BRIDGE_NAME = 15


@dataclass(frozen=True)
class HostAddress:
    """The host's address on a libvirt network (a subnet's gateway), IPv4 or IPv6, with the prefix length."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    prefix: int

    @property
    def family(self) -> str:
        """libvirt's name of the address family: ipv4 or ipv6."""
        return f"ipv{self.ip.version}"


@dataclass(frozen=True)
class NetworkSpec:
    """One libvirt network: its name, bridge, hypervisor, the host's addresses on it, forwarding."""

    name: str
    bridge: str
    uri: str
    addresses: tuple[HostAddress, ...] = ()
    forward: str | None = None
    workspace: str = ""  # its workspace's name (empty: `name`; see workspace_name)

    def __post_init__(self) -> None:
        if not 0 < len(self.bridge) <= MAX_BRIDGE_NAME:
            raise InputError(f"network {self.name}", f"bridge name {self.bridge!r} is not 1 to "
                                                     f"{MAX_BRIDGE_NAME} characters")
        if self.forward is not None and self.forward not in FORWARD_MODES:
            raise InputError(f"network {self.name}", f"forward mode {self.forward!r}: use one of "
                                                     f"{', '.join(FORWARD_MODES)} (or none: isolated)")


def libvirt_name(network_id: str) -> str:
    """The libvirt network (and workspace) name of a Neutron network."""
    return f"net-{network_id}"


def bridge_name(network_id: str) -> str:
    """A Linux bridge name derived from the network id: `pv` + 13 hex digits (15 characters)."""
    return "pv" + network_id.replace("-", "")[:MAX_BRIDGE_NAME - 2]


def workspace_name(name: str, hypervisor: str | None = None) -> str:
    """The workspace of libvirt network `name` on `hypervisor` (None: the home one, whose workspace is `name`)."""
    return name if hypervisor is None else f"{name}@{hypervisor}"


def network_dir(layout: Layout, name: str) -> Path:
    """The network's workspace directory under the root."""
    return layout.root / "networks" / name


def render_network_plan(spec: NetworkSpec) -> str:
    """The network workspace's main.tf."""
    env = environment(None, {"hcl": hcl}, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("terraform/network.tf.j2").render(
        net=spec, provider_source=PROVIDER_SOURCE, provider_version=PROVIDER_VERSION)


def apply_network(spec: NetworkSpec, ctx: Context) -> str:
    """Write the plan and converge it (create or update); the outcome. ProvisionError if the apply fails.

    The workspace's status.json records the result either way.
    """
    workspace = spec.workspace or spec.name
    return apply_standalone(network_dir(ctx.layout, workspace), f"network {workspace}", render_network_plan(spec),
                            ctx, yes=True)


def destroy_network(name: str, uri: str, ctx: Context, workspace: str | None = None) -> None:
    """Destroy the network's libvirt object on `uri`, then its workspace (`workspace`, default `name`; nothing to
    do if it has none), then any libvirt network of that name left outside Terraform's state (see
    discard_network)."""
    workspace = workspace or name
    destroy_standalone(network_dir(ctx.layout, workspace), f"network {workspace}", ctx)
    discard_network(name, uri)


def discard_network(name: str, uri: str) -> bool:
    """Stop and undefine libvirt network `name` on `uri` if it exists; True if there was one.

    A create whose start failed (e.g. libvirt could not program iptables) leaves the network defined but
    not in Terraform's state, so `terraform destroy` does not see it. The name is derived from the
    Neutron network's id (libvirt_name), so nothing else owns it. ProvisionError if libvirt refuses.
    """
    import libvirt

    hypervisor = Hypervisor(uri)
    try:
        with hypervisor.writing() as session:
            try:
                network = session.conn.networkLookupByName(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                    return False
                raise
            if network.isActive():
                network.destroy()
            if network.isPersistent():
                network.undefine()
            return True
    except (libvirt.libvirtError, ProviderError) as exc:
        raise ProvisionError(f"network {name}: cannot remove the libvirt network left by a failed apply: "
                             f"{exc}") from exc
    finally:
        hypervisor.close()
