"""`provision status`: each domain's state, from Terraform state and libvirt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.layer_record import read_layer
from provisioner.layout import Layout
from provisioner.spec.names import validate_domain_name
from provisioner.terraform.workspace import Workspace

_STATES = {0: "no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutting down",
           5: "shut off", 6: "crashed", 7: "suspended"}


@dataclass(frozen=True)
class DomainStatus:
    """What is known about one domain (a layered one: `layered on OTHER`, or on HOST:PORT)."""

    name: str
    libvirt_uri: str
    state: str
    addresses: list[str]
    resources: int
    last_apply: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def domain_status(layout: Layout, name: str | None = None) -> list[DomainStatus]:
    """Status of one domain, or of every domain under the root."""
    if name is not None:
        validate_domain_name(name)
        directories = [layout.domain_dir(name)]
        if not (directories[0] / "spec.json").is_file():
            raise ProvisionError(f"no domain {name!r} under {layout.domains}")
    else:
        directories = sorted(p.parent for p in layout.domains.glob("*/spec.json"))
    specs = [(d, json.loads((d / "spec.json").read_text())) for d in directories]
    layers = {d: read_layer(d) for d, _ in specs}
    owners = [spec for d, spec in specs if layers[d] is None]
    live = _libvirt_view({spec["libvirt_uri"] for spec in owners}, {spec["name"] for spec in owners})
    out = []
    for directory, spec in specs:
        resources = Workspace.read_managed(directory / "terraform" / "terraform.tfstate")
        state, addresses = live.get((spec["libvirt_uri"], spec["name"]), ("absent", []))
        layer = layers[directory]
        if layer is not None:
            state, addresses = f"layered on {layer.on}", []
        elif not resources and state == "absent":
            state = "not applied"
        static = [a.split("/")[0] for nic in spec["nics"] for a in nic["addresses"]]
        record = directory / "status.json"
        out.append(DomainStatus(
            name=spec["name"], libvirt_uri=spec["libvirt_uri"], state=state,
            addresses=static or addresses, resources=len(resources),
            last_apply=json.loads(record.read_text()) if record.exists() else None,
        ))
    return out


def _libvirt_view(uris: set[str], names: set[str]) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(uri, name) -> (state, addresses) for the domains libvirt knows."""
    import libvirt

    from provisioner.provider.simulator import open_readonly

    view: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for uri in uris:
        try:
            conn = open_readonly(uri)
        except libvirt.libvirtError as exc:
            for name in names:
                view[(uri, name)] = (f"unknown (cannot reach {uri}: {exc.get_error_message()})", [])
            continue
        try:
            for dom in conn.listAllDomains():
                if dom.name() not in names:
                    continue
                state = _STATES.get(dom.state()[0], "unknown")
                view[(uri, dom.name())] = (state, _addresses(dom) if state == "running" else [])
        finally:
            conn.close()
    return view


def _addresses(dom: Any) -> list[str]:
    import libvirt

    from provisioner.interface_addresses import interface_addresses

    found = interface_addresses(dom, libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
    return sorted(a["addr"] for iface in found.values() for a in (iface.get("addrs") or []))
