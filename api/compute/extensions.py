"""GET /compute/v2.1/extensions[/{alias}]: Nova's frozen extension list (the API is deprecated), limited to the
extensions whose APIs are served here, and those Nova lists itself though it removed their APIs."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import NotFound
from api.http import send
from provisioner.excerpt import cut

UPDATED = "2014-12-03T00:00:00Z"  # Nova shows this date for every v2.1 extension
# (alias, name, description) of the served APIs, as Nova names them.
SERVED = (
    ("os-admin-actions", "AdminActions", "Enable admin-only server actions."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create Server API."),
    ("os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."),
    # Nova removed the os-consoles API in 21.0 (Ussuri) and still lists it (Tempest's test_get_extension asks
    # for it): served by neither.
    ("os-consoles", "Consoles", "Interactive Console support."),
    ("os-create-backup", "CreateBackup", "Create a backup of a server."),
    ("os-extended-availability-zone", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
    ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
    ("os-flavor-access", "FlavorAccess", "Flavor access support."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
    ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
    ("os-floating-ips", "FloatingIps", "Floating IPs support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."),
    ("os-instance-usage-audit-log", "OSInstanceUsageAuditLog", "Admin-only Task Log Monitoring."),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
    ("os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."),
    ("os-networks", "Networks", "Admin-only Network Management Extension."),
    ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
    ("os-quota-sets", "Quotas", "Quotas management support."),
    ("os-security-groups", "SecurityGroups", "Security group support."),
    ("os-server-diagnostics", "ServerDiagnostics", "Allow Admins to view server diagnostics through server id."),
    ("os-server-groups", "ServerGroups", "Server group support."),
    ("os-server-password", "ServerPassword", "Server password support."),
    ("os-server-tags", "ServerTags", "Server tags support."),
    ("os-services", "Services", "Services support."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
    ("os-tenant-networks", "OSTenantNetworks", "Tenant-based Network Management Extension."),
    ("os-volumes", "Volumes", "Volumes support."),
)


def _view(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [], "updated": UPDATED,
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml"}


class Extensions:
    """The extension list and one extension by alias."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"extensions": [_view(*entry) for entry in SERVED]})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        found = next((entry for entry in SERVED if entry[0] == alias), None)
        if found is None:
            raise NotFound(f"Extension {cut(alias)} is not served here.")
        send(resp, {"extension": _view(*found)})
