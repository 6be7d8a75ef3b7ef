"""Limit overrides in state.db: per quota class (`api_quota_class_limits`; the class `default` is what every
project starts from, as in Nova and Cinder), per project (`api_quota_limits`) and per user of a project
(`api_quota_user_limits`, Nova's per-user quotas); usage from the services' stores, and the check every create
makes inside the write transaction that inserts its record."""

from __future__ import annotations

from typing import Callable, Mapping

from api.db import Database
from api.quota.errors import REFUSALS, Over
from api.quota.models import UNLIMITED, QuotaDefaults

# (project_id, user_id) -> resource -> amount in use; resources a service has no objects for are absent (0).
Counter = Callable[[str, str | None], Mapping[str, int]]
# Called by a store with the project that will own a new record, inside the transaction that inserts it.
Admit = Callable[[str], None]
# Resources a service adds at run time (Cinder's volumes_<type>, ...), unlimited unless a class or project sets them.
ExtraResources = Callable[[], list[str]]
DEFAULT_CLASS = "default"


class QuotaStore:
    """Limits and usage of each project, for the services whose usage counters it was given."""

    def __init__(self, db: Database, defaults: QuotaDefaults, counters: Mapping[str, Counter]):
        self.db = db
        self.defaults = defaults
        self.counters = dict(counters)
        self.extras: dict[str, ExtraResources] = {}
        db.create(
            "CREATE TABLE IF NOT EXISTS api_quota_limits (service TEXT NOT NULL, project_id TEXT NOT NULL, "
            "resource TEXT NOT NULL, hard_limit INTEGER NOT NULL, PRIMARY KEY (service, project_id, resource))")
        db.create(
            "CREATE TABLE IF NOT EXISTS api_quota_class_limits (service TEXT NOT NULL, class_name TEXT NOT NULL, "
            "resource TEXT NOT NULL, hard_limit INTEGER NOT NULL, PRIMARY KEY (service, class_name, resource))")
        db.create(
            "CREATE TABLE IF NOT EXISTS api_quota_user_limits (service TEXT NOT NULL, project_id TEXT NOT NULL, "
            "user_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL, "
            "PRIMARY KEY (service, project_id, user_id, resource))")

    def add_resources(self, service: str, names: ExtraResources) -> None:
        """Let `names` add run-time resources to the service's (unlimited until set)."""
        self.extras[service] = names

    def resources(self, service: str) -> list[str]:
        """The service's resource names: the configured ones, then the run-time ones."""
        extra = self.extras.get(service)
        return [*self.defaults.of(service), *(extra() if extra else [])]

    def _overrides(self, sql: str, args: tuple[str, ...], into: dict[str, int]) -> dict[str, int]:
        rows = self.db.connect().execute(sql, args)
        into.update({resource: value for resource, value in rows if resource in into})
        return into

    def class_limits(self, service: str, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
        """A quota class's limits: config.yaml's defaults (unlimited for run-time resources), with the class's
        own values. The `default` class's are every project's defaults."""
        limits = {name: self.defaults.of(service).get(name, UNLIMITED) for name in self.resources(service)}
        return self._overrides("SELECT resource, hard_limit FROM api_quota_class_limits "
                               "WHERE service = ? AND class_name = ?", (service, class_name), limits)

    def limits(self, service: str, project_id: str, user_id: str | None = None) -> dict[str, int]:
        """The project's limits: the default class's, with the admin's overrides; with `user_id`, the user's
        own overrides on top (Nova's per-user quotas)."""
        limits = self._overrides("SELECT resource, hard_limit FROM api_quota_limits "
                                 "WHERE service = ? AND project_id = ?", (service, project_id),
                                 self.class_limits(service))
        if user_id is None:
            return limits
        return self._overrides("SELECT resource, hard_limit FROM api_quota_user_limits "
                               "WHERE service = ? AND project_id = ? AND user_id = ?",
                               (service, project_id, user_id), limits)

    def usage(self, service: str, project_id: str, user_id: str | None = None) -> dict[str, int]:
        """What the project uses of each resource (key pairs: the user's, as in Nova)."""
        counted = self.counters[service](project_id, user_id)
        return {resource: counted.get(resource, 0) for resource in self.resources(service)}

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

    def set_class_limits(self, service: str, class_name: str, values: Mapping[str, int]) -> None:
        """Store a quota class's limits for these resources."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO api_quota_class_limits (service, class_name, resource, hard_limit) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (service, class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
                [(service, class_name, resource, value) for resource, value in values.items()])

    def set_user_limits(self, service: str, project_id: str, user_id: str, values: Mapping[str, int]) -> None:
        """Store one user's own limits in a project for these resources."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO api_quota_user_limits (service, project_id, user_id, resource, hard_limit) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (service, project_id, user_id, resource) "
                "DO UPDATE SET hard_limit = excluded.hard_limit",
                [(service, project_id, user_id, resource, value) for resource, value in values.items()])

    def reset(self, service: str, project_id: str, user_id: str | None = None) -> None:
        """Forget the project's own limits (and its users'), or with `user_id` only that user's: the project's
        (or the defaults) apply again."""
        conn = self.db.connect()
        conn.execute("DELETE FROM api_quota_user_limits WHERE service = ? AND project_id = ?"
                     + (" AND user_id = ?" if user_id else ""), (service, project_id, *([user_id] if user_id else [])))
        if user_id is None:
            conn.execute("DELETE FROM api_quota_limits WHERE service = ? AND project_id = ?", (service, project_id))

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
