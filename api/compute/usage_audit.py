"""Nova's os-instance_usage_audit_log (admin): the state of the periodic usage audit per compute host for the
last completed month before a time. Nova runs that audit only when instance_usage_audit is set (off by
default); the engine has no such task, so every compute host is reported as not run, with no log."""

from __future__ import annotations

from datetime import datetime, timezone

import falcon

from api.auth import token_of
from api.compute.placement import Hosts
from api.errors import BadRequest, Forbidden
from api.http import send
from provisioner.excerpt import cut

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")
_SHOWN = "%Y-%m-%d %H:%M:%S"


def _month_before(moment: datetime) -> tuple[datetime, datetime]:
    """The last whole month ended by `moment` (Nova's last_completed_audit_period, unit month)."""
    end = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin = end.replace(year=end.year - 1, month=12) if end.month == 1 else end.replace(month=end.month - 1)
    return begin, end


def audit_log(before: datetime, hosts: list[str]) -> dict[str, object]:
    """The audit's state for the period before `before`: not run on any of the compute `hosts`."""
    begin, end = _month_before(before)
    return {"hosts_not_run": hosts, "log": {}, "num_hosts": len(hosts), "num_hosts_done": 0,
            "num_hosts_not_run": len(hosts), "num_hosts_running": 0, "total_errors": 0, "total_instances": 0,
            "overall_status": f"0 of {len(hosts)} hosts done. 0 errors.",
            "period_beginning": begin.strftime(_SHOWN), "period_ending": end.strftime(_SHOWN)}


def _admin(req: falcon.Request) -> None:
    if not token_of(req).is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-instance-usage-audit-log:list to be performed.")


class UsageAuditLog:
    """GET /os-instance_usage_audit_log and /os-instance_usage_audit_log/{before} ("YYYY-MM-DD HH:MM:SS")."""

    def __init__(self, hosts: Hosts):
        self.hosts = hosts  # a compute host per hypervisor

    def _log(self, before: datetime) -> dict[str, object]:
        return audit_log(before, [host.name for host in self.hosts.hosts])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _admin(req)
        send(resp, {"instance_usage_audit_logs": self._log(datetime.now(timezone.utc).replace(tzinfo=None))})

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, before: str) -> None:
        _admin(req)
        for form in _FORMATS:
            try:
                moment = datetime.strptime(before, form)
                break
            except ValueError:
                continue
        else:
            raise BadRequest("before_timestamp", f"{cut(before)} is not a time such as 2024-01-31 12:00:00")
        send(resp, {"instance_usage_audit_log": self._log(moment)})
