"""From a Nova `POST /servers` body to a Server record and the DomainSpec the engine provisions."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from api.compute.models import ERROR, Server
from api.compute.placement import Host, Hosts, NoValidHost
from api.compute.server_create import admin_password
from api.compute.server_meta import checked_metadata
from api.config import ApiConfig, Flavor
from api.errors import ApiError, BadRequest, Conflict, Forbidden
from api.http import field
from api.identity.tokens import Token
from api.image.catalog import ImageCatalog
from api.network.firewall import filter_name
from api.network.models import ACTIVE, Network
from api.network.store import NetworkStore
from provisioner.errors import InputError
from provisioner.excerpt import cut, describe
from provisioner.images.records import ImageRecord
from provisioner.layout import Layout
from provisioner.spec.cloudconfig import TenantUserData, read_user_data
from provisioner.spec.load import auto_domain_type, mac_for
from provisioner.spec.model import DomainSpec, Nic
from provisioner.spec.passwords import PLAIN, hash_plain_passwords

GIB = 1 << 30
MAX_USER_DATA = 65535  # Nova's limit on the base64 text


@dataclass(frozen=True)
class Built:
    """The new server's record and the spec to provision (None: no hypervisor takes it, the server is ERROR)."""

    server: Server
    spec: DomainSpec | None


class ServerBuilder:
    """Validates a create request against flavors, images, networks and keypairs."""

    def __init__(self, config: ApiConfig, layout: Layout, images: ImageCatalog, networks: NetworkStore,
                 keypair_lookup: Any, hosts: Hosts, placed: Callable[[], list[Server]]):
        self.config = config
        self.hosts = hosts
        self.placed = placed  # every server record: what the hypervisors already hold
        self.layout = layout
        self.images = images
        self.networks = networks
        self.keypair_lookup = keypair_lookup
        # Every flavor a server may use: config.yaml's unless the compute routes give their catalog (which
        # adds the flavors admins created).
        self.flavor_source: Callable[[], Iterable[Flavor]] = lambda: config.flavors

    def flavor(self, flavor_id: str, where: str) -> Flavor:
        """The configured flavor with this id; BadRequest naming `where` otherwise."""
        found = next((f for f in self.flavor_source() if f.id == flavor_id), None)
        if found is None:
            raise BadRequest(where, f"flavor {cut(flavor_id)} does not exist")
        return found

    def _image(self, token: Token, body: dict[str, Any]) -> ImageRecord:
        image_id = body.get("imageRef")
        if not image_id:
            # An image booted as the local disk by block_device_mapping_v2 (api.compute.block_devices checked it).
            bdm = body.get("block_device_mapping_v2") or []
            boot = next((b for b in bdm if isinstance(b, dict) and b.get("boot_index") in (0, "0")), None)
            if boot is None or boot.get("source_type") != "image":
                raise BadRequest("server.imageRef", "is required unless a block device mapping boots the server")
            image_id = boot.get("uuid")
        if not isinstance(image_id, str):
            raise BadRequest("server.imageRef", f"{describe(image_id)} is not an image id")
        try:
            return self.images.record(token, image_id)
        except (Conflict, Forbidden) as exc:
            # Killed (its file gone) or deactivated: Nova's 400 "Image … is not active", saying why.
            raise BadRequest("server.imageRef", f"image {cut(image_id)} is not active: {exc.message}") from None
        except ApiError:
            raise BadRequest("server.imageRef", f"image {cut(image_id)} does not exist or has no data yet") from None

    def _networks(self, token: Token, requested: Any) -> list[tuple[Network, str | None, str]]:
        """(network, requested fixed IP or None, its field name) for each NIC."""
        if requested in (None, "auto"):
            return [(self.networks.default, None, "server.networks")]
        if requested == "none":
            return []
        if not isinstance(requested, list):
            raise BadRequest("server.networks", "must be a list, 'auto' or 'none'")
        found = []
        for index, entry in enumerate(requested):
            where = f"server.networks[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("uuid"), str):
                raise BadRequest(where, "only {'uuid': NETWORK_ID[, 'fixed_ip': IPV4]} entries are supported")
            try:
                network = self.networks.network(token, entry["uuid"])
            except ApiError:
                raise BadRequest(f"{where}.uuid", f"network {cut(entry['uuid'])} does not exist") from None
            if network.status != ACTIVE:
                raise BadRequest(f"{where}.uuid", f"network {network.name or network.id} is {network.status}, "
                                                  "not ACTIVE: its libvirt network is not applied")
            found.append((network, field(entry, "fixed_ip", str, where, False), f"{where}.fixed_ip"))
        return found

    def _user_data(self, body: dict[str, Any]) -> TenantUserData:
        """The tenant's base64 user data, validated (provisioner.spec.cloudconfig says what is accepted)."""
        text = field(body, "user_data", str, "server", False)
        if text is None:
            return TenantUserData([], [], [], None, ())
        if len(text) > MAX_USER_DATA:
            raise BadRequest("server.user_data", f"is longer than {MAX_USER_DATA} characters")
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error, or text that is not ASCII
            raise BadRequest("server.user_data", "is not base64-encoded UTF-8 text") from None
        try:
            return read_user_data(data, "server.user_data", self.config.admin_user)
        except InputError as exc:
            raise BadRequest(exc.where, exc.message) from None

    def _zone(self, token: Token, body: dict[str, Any]) -> tuple[str | None, Host | None]:
        """The requested availability zone (None: any) and the hypervisor an admin forces with Nova's
        `ZONE:HOST` (or `ZONE:HOST:NODE`, `ZONE::NODE`: a hypervisor is its own node); Nova's 400 for a zone no
        hypervisor is in or a host that is not configured, its 403 for a forced host from a non-admin."""
        requested = field(body, "availability_zone", str, "server", False)
        if not requested:
            return None, None
        parts = requested.split(":")
        if len(parts) > 3:
            raise BadRequest("server.availability_zone", "Unable to parse availability_zone")
        zone, named = parts[0], next((p for p in reversed(parts[1:]) if p), None)
        forced = None
        if len(parts) > 1:
            if not token.is_admin:
                raise Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.")
            forced = self.hosts.named(named or "")
            if forced is None:
                raise BadRequest("server.availability_zone", f"Compute host {cut(named or '')} could not be found.")
            return forced.zone, forced  # the host's own zone, whatever was named with it (as Nova does)
        if zone not in self.hosts.zones():
            raise BadRequest("server.availability_zone", f"the requested availability zone {cut(zone)} is not "
                                                          "available")
        return zone, None

    def _domain_type(self, host: Host) -> tuple[str, str]:
        domain_type = host.config.domain_type
        if domain_type == "auto":
            domain_type = auto_domain_type(host.uri, self.layout)
        return domain_type, "host-passthrough" if domain_type == "kvm" else "maximum"

    def build(self, token: Token, body: dict[str, Any], volume_boot: bool = False, on: str | None = None) -> Built:
        """Validate `body` (the `server` object) completely, then describe the server and its domain.
        `volume_boot`: its system disk is a volume (api.compute.block_devices adds it to the spec), it has no
        image of its own; `on`: the hypervisor its existing volumes are on, where it must go."""
        name = field(body, "name", str, "server")
        if not name.strip() or len(name) > 255:
            raise BadRequest("server.name", "must be 1 to 255 characters")
        flavor = self.flavor(str(field(body, "flavorRef", (str, int), "server")), "server.flavorRef")
        image = None if volume_boot else self._image(token, body)
        zone, forced = self._zone(token, body)
        networks = self._networks(token, body.get("networks"))
        key_name = field(body, "key_name", str, "server", False)
        admin_keys = []
        if key_name is not None:
            keypair = self.keypair_lookup(token.user_id, key_name)
            if keypair is None:
                raise BadRequest("server.key_name", f"keypair {cut(key_name)} does not exist")
            if keypair.type != "ssh":  # an x509 certificate is no SSH key; Nova hands it to Windows guests
                raise BadRequest("server.key_name", f"keypair {cut(key_name)} is an x509 certificate, not an SSH key")
            admin_keys.append(keypair.public_key)
        tenant = self._user_data(body)
        users, extra_keys = tenant.users, tenant.admin_keys
        metadata = checked_metadata(body["metadata"], "server.metadata") if body.get("metadata") is not None else {}
        virtual_size = image.virtual_size if image else 0
        size = flavor.disk * GIB if flavor.disk else max(virtual_size, 10 * GIB)
        if image is not None and size < image.virtual_size:
            raise BadRequest("server.flavorRef", f"flavor {flavor.name}'s disk ({flavor.disk} GiB) is smaller "
                                                 f"than image {image.name} ({image.virtual_size} bytes)")

        server_id = str(uuid.uuid4())
        domain = f"srv-{server_id}"
        fixed_ips = self.networks.allocate(networks)
        port_ids = [str(uuid.uuid5(uuid.UUID(server_id), f"nic{i}")) for i in range(len(networks))]
        nics = [Nic(mac=mac_for(domain, i), bridge=n.bridge, network=n.libvirt_network,
                    nwfilter=filter_name(port_id))  # its security groups (api/network/firewall_sync.py)
                for i, ((n, _, _), port_id) in enumerate(zip(networks, port_ids, strict=True))]
        nics = [fixed.on(nic) if fixed else nic for nic, fixed in zip(nics, fixed_ips, strict=True)]
        admin = next((u for u in users if u.get("name") == self.config.admin_user), None)
        if admin is None:
            admin = {"name": self.config.admin_user}
            users.append(admin)
        admin["ssh_authorized_keys"] = [*admin.get("ssh_authorized_keys", []), *admin_keys, *extra_keys]
        if admin_pass := admin_password(body):  # hashed below; a user_data password for the admin wins
            admin.setdefault(PLAIN, admin_pass)
            admin.setdefault("lock_passwd", False)  # cloud-init locks a user's password unless told not to
        host: Host | None = None
        try:
            # A forced host skips the checks, as Nova's force_hosts skips its filters (the build still checks
            # that libvirt reaches it).
            host = forced or self.hosts.choose(flavor, zone, self.placed, self.flavor_source(), on=on)
            fault = None
        except NoValidHost as exc:
            fault = str(exc)
        target = host or self.hosts.hosts[0]  # the spec of a server placed nowhere is never built
        domain_type, cpu_mode = self._domain_type(target)
        spec = DomainSpec(name=domain, image=image.to_image_ref() if image else None, size=size, memory=flavor.ram,
                          cpus=flavor.vcpus, cpu_mode=cpu_mode, domain_type=domain_type, libvirt_uri=target.uri,
                          nics=tuple(nics), users=hash_plain_passwords(users), admin_user=self.config.admin_user,
                          packages=tuple(tenant.packages), cloud_config=tenant.cloud_config,
                          user_parts=tenant.parts)
        now = time.time()
        ports = tuple({"id": port_id, "network_id": n.id, "mac": nic.mac, "ips": [str(a.ip) for a in nic.addresses],
                       "fixed_ips": [fixed.port_entry()] if fixed else []}
                      for (n, _, _), port_id, nic, fixed in zip(networks, port_ids, nics, fixed_ips, strict=True))
        server = Server(id=server_id, name=name, project_id=token.project_id, user_id=token.user_id,
                        domain=domain, flavor_id=flavor.id, image_id=image.id if image else "", ports=ports,
                        key_name=key_name,
                        metadata={str(k): str(v) for k, v in metadata.items()}, created=now, updated=now,
                        hypervisor=host.name if host else "", availability_zone=host.zone if host else zone or "")
        if host is None:  # Nova's NoValidHost: the server exists, in ERROR with the reason, and nothing is built
            return Built(replace(server, status=ERROR, task_state=None, fault=fault), None)
        return Built(server, spec)
