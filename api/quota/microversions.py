"""Which Nova quota resources a microversion no longer shows or accepts (nova/api/openstack/compute/quota_sets.py
and quota_classes.py): 2.36 drops the nova-network ones from os-quota-sets, 2.50 from os-quota-class-sets (which
shows the server group ones only from 2.50), 2.57 drops the injected-file ones from both."""

from __future__ import annotations

from typing import Mapping

from api.microversion import Version

NETWORK_QUOTAS = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
INJECTED_QUOTAS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
SERVER_GROUP_QUOTAS = ("server_groups", "server_group_members")


def hidden(version: Version, quota_class: bool = False) -> tuple[str, ...]:
    """The compute resources absent at `version` from os-quota-sets (or os-quota-class-sets)."""
    names: tuple[str, ...] = ()
    if version >= (Version(2, 50) if quota_class else Version(2, 36)):
        names += NETWORK_QUOTAS
    elif quota_class:
        names += SERVER_GROUP_QUOTAS
    if version >= Version(2, 57):
        names += INJECTED_QUOTAS
    return names


def shown(values: Mapping[str, int], version: Version, quota_class: bool = False) -> dict[str, int]:
    """`values` without the resources `version` does not show."""
    gone = hidden(version, quota_class)
    return {name: value for name, value in values.items() if name not in gone}
