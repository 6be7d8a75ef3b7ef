"""The quota and limits bodies of Nova (2.1), Cinder (3.0) and Neutron (quotas, quota_details)."""

from __future__ import annotations

from typing import Any, Mapping

# Nova's limits view (nova/api/openstack/compute/views/limits.py): quota -> absolute limit names, usage names.
NOVA_LIMIT_NAMES = {
    "ram": ("maxTotalRAMSize",), "instances": ("maxTotalInstances",), "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",), "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"), "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",), "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",), "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
NOVA_USED_NAMES = {"totalRAMUsed": "ram", "totalCoresUsed": "cores", "totalInstancesUsed": "instances",
                   "totalFloatingIpsUsed": "floating_ips", "totalSecurityGroupsUsed": "security_groups",
                   "totalServerGroupsUsed": "server_groups"}
# Cinder's limits view and used_limits extension.
CINDER_LIMIT_NAMES = {"gigabytes": "maxTotalVolumeGigabytes", "backup_gigabytes": "maxTotalBackupGigabytes",
                      "volumes": "maxTotalVolumes", "snapshots": "maxTotalSnapshots", "backups": "maxTotalBackups"}
CINDER_USED_NAMES = {"totalGigabytesUsed": "gigabytes", "totalBackupGigabytesUsed": "backup_gigabytes",
                     "totalVolumesUsed": "volumes", "totalSnapshotsUsed": "snapshots", "totalBackupsUsed": "backups"}


def quota_set(project_id: str | None, limits: Mapping[str, int],
              usage: Mapping[str, int] | None = None, cinder: bool = False) -> dict[str, Any]:
    """Nova's and Cinder's `quota_set`: limits, or with usage {limit, in_use, reserved} per resource
    (Cinder adds `allocated`); `id` unless None (Nova's update answers without it)."""
    body: dict[str, Any] = {} if project_id is None else {"id": project_id}
    for resource, limit in limits.items():
        if usage is None:
            body[resource] = limit
        else:
            body[resource] = {"limit": limit, "in_use": usage[resource], "reserved": 0,
                              **({"allocated": 0} if cinder else {})}
    return {"quota_set": body}


def nova_limits(limits: Mapping[str, int], usage: Mapping[str, int]) -> dict[str, Any]:
    """GET /compute/v2.1/limits."""
    absolute = {name: limits[quota] for quota, names in NOVA_LIMIT_NAMES.items() for name in names}
    absolute.update({name: usage[quota] for name, quota in NOVA_USED_NAMES.items()})
    return {"limits": {"rate": [], "absolute": absolute}}


def cinder_limits(limits: Mapping[str, int], usage: Mapping[str, int]) -> dict[str, Any]:
    """GET /volume/v3/limits."""
    absolute = {name: limits[quota] for quota, name in CINDER_LIMIT_NAMES.items()}
    absolute.update({name: usage[quota] for name, quota in CINDER_USED_NAMES.items()})
    return {"limits": {"rate": [], "absolute": absolute}}


def neutron_quota(limits: Mapping[str, int], usage: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Neutron's `quota`: limits, or {limit, used, reserved} per resource (quota_details)."""
    if usage is None:
        return {"quota": dict(limits)}
    return {"quota": {r: {"limit": limit, "used": usage[r], "reserved": 0} for r, limit in limits.items()}}


def neutron_quota_list(entries: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """GET /network/v2.0/quotas: the projects with limits of their own."""
    return {"quotas": [{**limits, "project_id": project, "tenant_id": project} for project, limits in entries.items()]}
