"""Per-project limit overrides in state.db (`api_quota_limits`), usage from the services' stores, and the check
every create makes inside the write transaction that inserts its record."""

from __future__ import annotations

from typing import Callable, Mapping

from api.db import Database
from api.quota.errors import REFUSALS, Over
from api.quota.models import UNLIMITED, QuotaDefaults

# (project_id, user_id) -> resource -> amount in use; resources a service has no objects for are absent (0).
Counter = Callable[[str, str | None], Mapping[str, int]]
# Called by a store with the project that will own a new record, inside the transaction that inserts it.
Admit = Callable[[str], None]


class QuotaStore:
    """Limits and usage of each project, for the services whose usage counters it was given."""

    def __init__(self, db: Database, defaults: QuotaDefaults, counters: Mapping[str, Counter]):
        self.db = db
        self.defaults = defaults
        self.counters = dict(counters)
        db.create(
            "CREATE TABLE IF NOT EXISTS api_quota_limits (service TEXT NOT NULL, project_id TEXT NOT NULL, "
            "resource TEXT NOT NULL, hard_limit INTEGER NOT NULL, PRIMARY KEY (service, project_id, resource))")

    def limits(self, service: str, project_id: str) -> dict[str, int]:
        """The project's limits: the defaults, with the admin's overrides."""
        limits = dict(self.defaults.of(service))
        rows = self.db.connect().execute(
            "SELECT resource, hard_limit FROM api_quota_limits WHERE service = ? AND project_id = ?",
            (service, project_id))
        limits.update({resource: value for resource, value in rows if resource in limits})
        return limits

    def usage(self, service: str, project_id: str, user_id: str | None = None) -> dict[str, int]:
        """What the project uses of each resource (key pairs: the user's, as in Nova)."""
        counted = self.counters[service](project_id, user_id)
        return {resource: counted.get(resource, 0) for resource in self.defaults.of(service)}

    def overridden(self, service: str) -> list[str]:
        """The projects with limits of their own, in id order."""
        rows = self.db.connect().execute(
            "SELECT DISTINCT project_id FROM api_quota_limits WHERE service = ? ORDER BY project_id", (service,))
        return [row[0] for row in rows]

    def below_usage(self, service: str, project_id: str, values: Mapping[str, int],
                    exempt: tuple[str, ...] = ()) -> tuple[str, int, int] | None:
        """The first (resource, new limit, usage) that would put the project over its limit, or None."""
        used = self.usage(service, project_id)
        for resource, limit in values.items():
            if resource not in exempt and limit != UNLIMITED and limit < used[resource]:
                return resource, limit, used[resource]
        return None

    def set_limits(self, service: str, project_id: str, values: Mapping[str, int]) -> None:
        """Store the project's own limits for these resources (known names only: the caller checked them)."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO api_quota_limits (service, project_id, resource, hard_limit) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (service, project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
                [(service, project_id, resource, value) for resource, value in values.items()])

    def reset(self, service: str, project_id: str) -> None:
        """Forget the project's own limits: the defaults apply again."""
        self.db.connect().execute("DELETE FROM api_quota_limits WHERE service = ? AND project_id = ?",
                                  (service, project_id))

    def check(self, service: str, project_id: str, deltas: Mapping[str, int], user_id: str | None = None,
              refuse: Callable[[list[Over]], Exception] | None = None) -> None:
        """Raise the service's over-quota error (or `refuse`'s) if adding `deltas` (resource -> amount, in
        the order the service reports them) would pass a limit. Call it inside Database.transaction(), with the insert
        it allows, so that no other create can count the same free units."""
        if not self.db.connect().in_transaction:
            raise RuntimeError("QuotaStore.check must run inside Database.transaction()")
        limits = self.limits(service, project_id)
        used = self.usage(service, project_id, user_id)
        overs = [Over(resource, amount, used[resource], limits[resource]) for resource, amount in deltas.items()
                 if amount > 0 and limits[resource] != UNLIMITED and used[resource] + amount > limits[resource]]
        if overs:
            raise (refuse or REFUSALS[service])(overs)

    def admission(self, service: str, deltas: Mapping[str, int], user_id: str | None = None) -> Admit:
        """check() for a record whose owning project the store decides (a subnet belongs to its network's)."""
        return lambda project_id: self.check(service, project_id, deltas, user_id)

    def check_each(self, service: str, project_id: str, amounts: Mapping[str, int]) -> None:
        """Raise the service's error for a per-object limit (Cinder's per_volume_gigabytes, Nova's
        metadata_items): `amount` itself, not usage + amount, must stay within it."""
        limits = self.limits(service, project_id)
        overs = [Over(resource, amount, 0, limits[resource]) for resource, amount in amounts.items()
                 if limits[resource] != UNLIMITED and amount > limits[resource]]
        if overs:
            raise REFUSALS[service](overs)
