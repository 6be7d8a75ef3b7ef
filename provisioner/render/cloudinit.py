"""cloud-init NoCloud documents: user-data, meta-data, network-config."""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from provisioner.keys import DomainKeys
from provisioner.render.yamltext import dump
from provisioner.spec.model import DomainSpec

# What the post-boot job needs on the guest: atd runs the setup, make runs it.
POST_BOOT_PACKAGES = ("at", "make")
SUDO_ALL = "ALL=(ALL) NOPASSWD:ALL"
FINAL_MESSAGE = "provisioner: cloud-init finished on {name}"


@dataclass(frozen=True)
class CloudInit:
    """The three NoCloud documents, as the bytes that go into the seed."""

    user_data: bytes
    meta_data: bytes
    network_config: bytes


def render_cloud_init(spec: DomainSpec, keys: DomainKeys) -> CloudInit:
    """Render the seed's documents for `spec`."""
    user_data = dump(user_data_doc(spec, keys), header="#cloud-config\n").encode()
    if spec.user_parts:
        user_data = multipart([("text/cloud-config", user_data),
                               *((p.content_type, p.content.encode()) for p in spec.user_parts)])
    network = dump(network_config_doc(spec)).encode()
    instance = hashlib.sha256(user_data + b"\0" + network).hexdigest()[:16]
    meta = dump({"instance-id": f"iid-{spec.name}-{instance}", "local-hostname": spec.name}).encode()
    return CloudInit(user_data, meta, network)


def user_data_doc(spec: DomainSpec, keys: DomainKeys) -> dict[str, Any]:
    """The #cloud-config mapping (before serialisation)."""
    doc: dict[str, Any] = {
        "hostname": spec.hostname,
        "fqdn": spec.name,
        "manage_etc_hosts": True,
        "locale": spec.locale,
    }
    if spec.admin_user == "root":
        doc["disable_root"] = False
    doc["users"] = _users(spec, keys)
    doc["ssh_deletekeys"] = True
    doc["ssh_genkeytypes"] = sorted(keys.host_private)
    doc["ssh_keys"] = {}
    for kind in sorted(keys.host_private):
        doc["ssh_keys"][f"{kind}_private"] = keys.host_private[kind]
        doc["ssh_keys"][f"{kind}_public"] = keys.host_public[kind]
    if spec.install_packages:
        doc["package_update"] = True
        doc["packages"] = list(dict.fromkeys([*POST_BOOT_PACKAGES, *spec.packages]))
    if spec.contact_email:
        doc["write_files"] = [{
            "path": "/etc/aliases",
            "content": f"root: {spec.contact_email}\n",
            "append": True,
        }]
        doc["runcmd"] = [["sh", "-c", "if command -v newaliases >/dev/null; then newaliases; fi"]]
    doc["final_message"] = FINAL_MESSAGE.format(name=spec.name)
    _merge_tenant(doc, spec.cloud_config or {})
    return doc


def _merge_tenant(doc: dict[str, Any], tenant: dict[str, Any]) -> None:
    """The tenant's cloud-config keys into the engine's `doc` (the rule in provisioner.spec.cloudconfig).

    A list both set (runcmd, write_files, packages …) is the engine's entries
    then the tenant's (packages without repeats); any other tenant value
    replaces the engine's. The keys the engine must keep never get here: they
    are refused at the door.
    """
    for key, value in tenant.items():
        mine = doc.get(key)
        if isinstance(mine, list) and isinstance(value, list):
            doc[key] = [*mine, *(v for v in value if key != "packages" or v not in mine)]
        else:
            doc[key] = copy.deepcopy(value)


def multipart(parts: list[tuple[str, bytes]]) -> bytes:
    """A MIME multipart/mixed user-data of (content type, body) parts, each base64, in order.

    Written out here rather than by email.generator, which draws a random
    boundary: this one is a digest of the parts, so the same parts give the
    same bytes. It has a '-', which base64 bodies never contain.
    """
    digest = hashlib.sha256(b"".join(t.encode() + b"\0" + body + b"\0" for t, body in parts)).hexdigest()
    boundary = f"==provisioner-{digest[:32]}=="
    out = [f'Content-Type: multipart/mixed; boundary="{boundary}"', "MIME-Version: 1.0", ""]
    for index, (content_type, body) in enumerate(parts):
        encoded = base64.encodebytes(body).decode()
        out += [f"--{boundary}", f'Content-Type: {content_type}; charset="utf-8"', "MIME-Version: 1.0",
                "Content-Transfer-Encoding: base64",
                f'Content-Disposition: attachment; filename="part-{index:03d}"', "", encoded.rstrip("\n")]
    out += [f"--{boundary}--", ""]
    return "\n".join(out).encode()


def layer_config_doc(spec: DomainSpec, keys: DomainKeys) -> dict[str, Any]:
    """The cloud-config a layer job applies on a machine `spec` does not own.

    Only what belongs to the domain: its users (its admin user with the
    engine's login key) and packages; never the machine's hostname, host keys
    or network. `package_upgrade` is pinned off so the machine's own
    user-data cannot turn an install into a full upgrade.
    """
    doc: dict[str, Any] = {"users": _users(spec, keys)}
    if spec.install_packages:
        doc["package_update"] = True
        doc["package_upgrade"] = False
        doc["packages"] = list(dict.fromkeys([*POST_BOOT_PACKAGES, *spec.packages]))
    return doc


def _users(spec: DomainSpec, keys: DomainKeys) -> list[Any]:
    users = [copy.deepcopy(u) for u in spec.users]
    admin = next((u for u in users if isinstance(u, dict) and u.get("name") == spec.admin_user), None)
    if admin is None:
        admin = {"name": spec.admin_user}
        if spec.admin_user != "root":
            admin.update({"shell": "/bin/bash", "lock_passwd": True})
        users.append(admin)
    if spec.admin_user != "root" and not admin.get("sudo"):
        admin["sudo"] = SUDO_ALL
    authorized = list(admin.get("ssh_authorized_keys", []))
    if keys.login_public not in authorized:
        authorized.append(keys.login_public)
    admin["ssh_authorized_keys"] = authorized
    return users


def network_config_doc(spec: DomainSpec) -> dict[str, Any]:
    """Network config version 2 (NoCloud's network-config has no top-level `network:`)."""
    ethernets: dict[str, Any] = {}
    for index, nic in enumerate(spec.nics):
        entry: dict[str, Any] = {"match": {"macaddress": nic.mac}, "set-name": f"eth{index}"}
        if nic.dhcp:
            entry["dhcp4"] = True
        else:
            entry["addresses"] = [str(a) for a in nic.addresses]
            if nic.gateway is not None:
                # Not `routes: [{to: default}]`: cloud-init 22.4 renders that for
                # ifupdown as `route add default`, which needs net-tools;
                # gateway4 becomes ifupdown's own `gateway` line.
                entry["gateway4"] = str(nic.gateway)
        if nic.resolvers:
            entry["nameservers"] = {"search": [spec.name], "addresses": [str(r) for r in nic.resolvers]}
        ethernets[f"eth{index}"] = entry
    return {"version": 2, "ethernets": ethernets}
