"""tempest.conf and accounts.yaml for a served root: every URL on 127.0.0.1, every skip a documented flag.

The feature flags below are the settings a deployment of this project would
also write (docs/conformance.md says why for each); nothing else is turned off.
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass

import yaml

PASSWORD = "tempest-pass-1"  # accounts live only in the tier's temporary root
PROJECTS = 6  # a member, a reader and a manager each: two workers lock up to four non-admin accounts at once
# Per-project quotas for the tier's config.yaml: Tempest's dynamic credentials would give every test class a
# new project; pre-provisioned ones share six, where volumes and security groups still being deleted by
# one class count against the next. Sized like a deployment that runs Tempest (devstack raises them too).
QUOTAS = {"compute": {"instances": 100, "cores": 200, "ram": 512000},
          "volume": {"volumes": 200, "snapshots": 200, "gigabytes": 2000},
          "network": {"network": 200, "subnet": 200, "port": 1000, "security_group": 100,
                      "security_group_rule": 1000}}
ADMINS = 5
SERVICE_ADMINS = 4  # all but the first: two classes at once may each take two (admin, service_user)


@dataclass(frozen=True)
class Account:
    """A pre-provisioned Keystone user with roles on its own project."""

    username: str
    project: str
    roles: tuple[str, ...]
    admin: bool = False

    @property
    def listed_roles(self) -> list[str]:
        """The roles accounts.yaml gives Tempest: an admin's all, another account only its persona (the first).
        Tempest picks a project's member, reader or manager by the listed role and sorts candidates by hash:
        a manager listed with `member` too was now and then taken as the primary member, and the class's
        later request for that project's manager found none free ("Insufficient number of users"). The
        user still has every role in Keystone, as implied roles give."""
        return list(self.roles) if self.admin else [self.roles[0]]


def accounts() -> list[Account]:
    """The tier's users: per project a member (member + reader, as Keystone's implied roles give), a
    reader and a manager, then admins.

    Tempest takes its primary user as a project member and `project_reader` from the same project;
    its `alt` user is the first free account in file order, so members come first: alt is then
    another project's member, as tenant-isolation tests need. Last, a user with the service role.
    """
    members = [Account(f"tempest-member-{n}", f"tempest-project-{n}", ("member", "reader"))
               for n in range(1, PROJECTS + 1)]
    readers = [Account(f"tempest-reader-{n}", f"tempest-project-{n}", ("reader",)) for n in range(1, PROJECTS + 1)]
    managers = [Account(f"tempest-manager-{n}", f"tempest-project-{n}", ("manager", "member", "reader"))
                for n in range(1, PROJECTS + 1)]
    # Some admin tests ask for admin and service at once (Nova's and Cinder's service-to-service APIs), and
    # two such classes may run at once (os-assisted-volume-snapshots' and Nova's volume negative tests).
    admins = [Account(f"tempest-admin-{n}", f"tempest-admin-project-{n}",
                      ("admin", "member", "reader") + (("service",) if n > ADMINS - SERVICE_ADMINS else ()), True)
              for n in range(1, ADMINS + 1)]
    # Tempest's admin tests of Nova/Cinder service-to-service APIs ask for a user with the service role.
    service = [Account("tempest-service-1", "tempest-service-project", ("service",))]
    return members + readers + managers + admins + service


# The admin Tempest's dynamic credentials act as (auth.admin_username): the first pre-provisioned admin; its
# tokens are its own, so sharing the account with the pool's locking does not matter.
DYNAMIC_ADMIN = Account("tempest-admin-1", "tempest-admin-project-1", ("admin", "member", "reader"), True)


def accounts_yaml(users: list[Account]) -> str:
    """Tempest's pre-provisioned credentials file (auth.test_accounts_file)."""
    entries = []
    for user in users:
        entry = {"username": user.username, "project_name": user.project, "password": PASSWORD,
                 "domain_name": "Default", "roles": user.listed_roles}
        if user.admin:
            entry["types"] = ["admin"]
        entries.append(entry)
    return yaml.safe_dump(entries, sort_keys=False)


@dataclass(frozen=True)
class Target:
    """What tempest.conf needs to know about the served root."""

    url: str  # http://127.0.0.1:PORT
    image_ref: str
    image_ref_alt: str
    accounts_file: str
    log_file: str
    lock_path: str
    compute_max_microversion: str  # as the server advertises it
    volume_max_microversion: str
    public_network_id: str = ""  # the external network the tier makes, as an operator does (docs/api.md)


# Neutron extensions: exactly those the API lists (api/network/extensions.py; tests/api/test_neutron_extensions.py
# holds the two equal). Not offered: the agent-based ones (dvr, l3-ha, metering, dhcp_agent_scheduler: the
# deployment runs no agents, its agent list is empty), trunk (an OVS trunk driver), auto-allocated-topology,
# address-scope and network-ip-availability.
NETWORK_EXTENSIONS = ("agent", "allowed-address-pairs", "binding", "ext-gw-mode", "external-net", "extra_dhcp_opt",
                      "extraroute", "filter-validation", "ip-substring-filtering", "net-mtu", "project-id",
                      "provider", "quotas", "router", "security-group", "service-type", "standard-attr-description",
                      "standard-attr-tag", "subnet_allocation", "tag", "tag-ext")


VOLUME_EXTENSIONS = ("os-availability-zone", "os-extended-snapshot-attributes", "os-quota-sets",
                     "os-types-extra-specs", "os-types-manage", "os-vol-tenant-attr", "os-volume-actions",
                     "os-volume-type-access")


def tempest_conf(target: Target) -> str:
    """The tempest.conf text for `target`."""
    base = target.url
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"log_file": target.log_file, "debug": "false", "use_stderr": "false"},
        "oslo_concurrency": {"lock_path": target.lock_path},
        "auth": {"use_dynamic_credentials": "false", "test_accounts_file": target.accounts_file,
                 "default_credentials_domain_name": "Default", "create_isolated_networks": "false",
                 # Classes with force_tenant_isolation (Nova's and Cinder's quota tests) make their own
                 # project and users through Keystone's admin API as this admin, whatever the flag above.
                 "admin_username": DYNAMIC_ADMIN.username, "admin_password": PASSWORD,
                 "admin_project_name": DYNAMIC_ADMIN.project, "admin_domain_name": "Default"},
        "identity": {"uri_v3": f"{base}/identity/v3", "auth_version": "v3", "region": "RegionOne",
                     "v3_endpoint_type": "public", "admin_role": "admin", "default_domain_id": "default"},
        # No OS-* identity extension is served: OS-EC2 credentials only serve an EC2/S3 API, which this project
        # does not have (its secrets would be stored retrievably for nothing); OS-INHERIT, OS-TRUST, OS-OAUTH1
        # and federation are not implemented. Application credentials and their access rules are core v3 here.
        "identity-feature-enabled": {"api_v2": "false", "api_v2_admin": "false", "api_v3": "true",
                                     "api_extensions": "", "access_rules": "true"},
        "compute": {"image_ref": target.image_ref, "image_ref_alt": target.image_ref_alt,
                    "flavor_ref": "1", "flavor_ref_alt": "2", "fixed_network_name": "default",
                    "build_timeout": "120", "region": "RegionOne", "min_compute_nodes": "1",
                    "max_microversion": target.compute_max_microversion},
        "compute-feature-enabled": {
            # Not offered by the engine (docs/conformance.md, Feature flags).
            "change_password": "false", "suspend": "false", "shelve": "false", "rescue": "false",
            "live_migration": "false", "cold_migration": "false", "metadata_service": "false",
            "config_drive": "false", "attach_encrypted_volume": "false",
            "vnc_console": "false", "spice_console": "false", "serial_console": "false", "ide_bus": "false",
            "personality": "false",
            # Offered or meant to be (issue #12): failures here are gaps, not skips.
            "console_output": "true", "pause": "true", "resize": "true", "snapshot": "true",
            "interface_attach": "true"},
        "image": {"region": "RegionOne", "container_formats": "bare", "disk_formats": "qcow2,raw", "build_timeout": "120",
                  # Tempest never fetches these itself; nothing here points off the loopback.
                  "http_image": f"{base}/conformance/no-such-image.img",
                  "http_qcow2_image": f"{base}/conformance/no-such-image.qcow2"},
        "image-feature-enabled": {"api_v2": "true"},
        # Every Neutron call here is done when it answers: a wait that does not end at once never ends
        # (a router's interface ports stay DOWN, routers being records), and at 120 s those waits took
        # ~40 minutes of the tier's test time.
        "network": {"region": "RegionOne", "project_network_cidr": "10.100.0.0/16", "build_timeout": "10",
                    "project_networks_reachable": "false",
                    # A deployment's documented external network (docs/api.md): routers' gateways and
                    # floating IPs come from it.
                    "public_network_id": target.public_network_id,
                    "floating_network_name": "public" if target.public_network_id else ""},
        # ipv6_subnet_attributes: ipv6_ra_mode/ipv6_address_mode are served, SLAAC and DHCPv6-stateless ports
        # addressed by EUI-64 (api/network/ipam.py).
        "network-feature-enabled": {"api_extensions": ",".join(NETWORK_EXTENSIONS), "ipv6": "true",
                                    "ipv6_subnet_attributes": "true"},
        # storage_protocol and vendor_name: what the one backend reports (api/volume/backend.py); Tempest puts
        # them in a volume type's extra specs, which must match it as Cinder's CapabilitiesFilter checks.
        "volume": {"region": "RegionOne", "catalog_type": "block-storage", "volume_size": "1", "build_timeout": "120",
                   "max_microversion": target.volume_max_microversion, "storage_protocol": "file",
                   "vendor_name": "Open Source"},
        # api_extensions: the legacy Cinder extensions the API lists (api/volume/resources.py EXTENSIONS); the
        # default, "all", would have Tempest look for ones it does not serve (Hosts).
        "volume-feature-enabled": {"backup": "false", "snapshot": "true", "clone": "true",
                                   "api_extensions": ",".join(VOLUME_EXTENSIONS)},
        "validation": {"run_validation": "false"},
        "service_available": {"nova": "true", "cinder": "true", "neutron": "true", "glance": "true",
                              "swift": "false", "horizon": "false"},
        "dashboard": {"dashboard_url": f"{base}/dashboard/"},
    }
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]  # keep option names as written
    for name, options in sections.items():
        if name != "DEFAULT":
            parser.add_section(name)
        for key, value in options.items():
            parser.set(name, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()
