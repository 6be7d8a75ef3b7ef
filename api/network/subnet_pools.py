"""Neutron subnet pools: /network/v2.0/subnetpools[/{id}] (create, list, show, update, delete).

A pool holds prefixes of one IP version with the prefix lengths a subnet
carved from it may have (a subnet create naming it: pool_allocation.py). It
is listed, shown, renamed, given more prefixes (never fewer, as Neutron) and
deleted once no subnet is allocated from it. Another project sees a pool
only if it is shared; `shared` and `is_default` are an admin's.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import replace
from typing import Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.errors import BadRequest, Conflict, Forbidden
from api.http import field, read_json, send
from api.identity.tokens import Token
from api.network.bulk import create_all
from api.network.models import SubnetPool
from api.network.store import NetworkStore
from api.network.views import filtered, selected, stamps
from provisioner.excerpt import cut, describe

WHERE = "subnetpool"
MAX_PREFIXLEN = {4: 32, 6: 128}
UPDATABLE = ("name", "description", "prefixes", "min_prefixlen", "max_prefixlen", "default_prefixlen", "is_default")


def _prefixes(body: dict[str, Any], required: bool) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    values = field(body, "prefixes", list, WHERE, required, [])
    if required and not values:
        raise BadRequest(f"{WHERE}.prefixes", "needs at least one prefix")
    found = []
    for index, value in enumerate(values):
        try:
            found.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            raise BadRequest(f"{WHERE}.prefixes[{index}]", f"{describe(value)} is not a CIDR") from None
    if len({p.version for p in found}) > 1:
        raise BadRequest(f"{WHERE}.prefixes", "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
    return list(ipaddress.collapse_addresses(found))  # type: ignore[arg-type]  # one version, checked above


def _lengths(body: dict[str, Any], version: int, shortest: int, current: SubnetPool | None) -> tuple[int, int, int]:
    """(min, max, default) prefix lengths: min no shorter than the pool's prefixes, min <= default <= max."""
    low = field(body, "min_prefixlen", int, WHERE, False, current.min_prefixlen if current else shortest)
    high = field(body, "max_prefixlen", int, WHERE, False,
                 current.max_prefixlen if current else MAX_PREFIXLEN[version])
    default = field(body, "default_prefixlen", int, WHERE, False, current.default_prefixlen if current else low)
    if not shortest <= low <= default <= high <= MAX_PREFIXLEN[version]:
        raise BadRequest(WHERE, f"prefix lengths must be {shortest} <= min_prefixlen ({low}) <= default_prefixlen "
                                f"({default}) <= max_prefixlen ({high}) <= {MAX_PREFIXLEN[version]}")
    return low, high, default


class SubnetPoolStore:
    """The subnet pools one token may see and change."""

    def __init__(self, store: NetworkStore):
        self.store = store
        self.pools = store.pools
        self.visible = store.visible_pools
        self.pool = store.pool

    def _admin_fields(self, token: Token, body: dict[str, Any]) -> None:
        asked = [k for k in ("shared", "is_default") if body.get(k)]
        if asked and not token.is_admin:
            raise Forbidden(f"setting {', '.join(asked)} requires the admin role")

    def create(self, token: Token, body: dict[str, Any]) -> SubnetPool:
        """A new pool of the token's project."""
        self._admin_fields(token, body)
        prefixes = _prefixes(body, required=True)
        version = prefixes[0].version
        low, high, default = _lengths(body, version, min(p.prefixlen for p in prefixes), None)
        return self.pools.insert(SubnetPool(
            id=str(uuid.uuid4()), name=field(body, "name", str, WHERE, False, ""), project_id=token.project_id,
            ip_version=version, prefixes=tuple(str(p) for p in prefixes), min_prefixlen=low, max_prefixlen=high,
            default_prefixlen=default, shared=field(body, "shared", bool, WHERE, False, False),
            is_default=field(body, "is_default", bool, WHERE, False, False),
            description=field(body, "description", str, WHERE, False, "")))

    def update(self, token: Token, pool_id: str, body: dict[str, Any]) -> SubnetPool:
        """Rename, describe, add prefixes to or change the prefix lengths of a pool of the token's project."""
        pool = self.pool(token, pool_id)
        if pool.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"subnet pool {pool.id} belongs to another project")
        unknown = sorted(set(body) - set(UPDATABLE))
        if unknown:
            raise BadRequest(f"{WHERE}.{cut(unknown[0])}", f"cannot be updated (updatable: {', '.join(UPDATABLE)})")
        self._admin_fields(token, body)
        prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
        if "prefixes" in body:
            given = _prefixes(body, required=True)
            if given[0].version != pool.ip_version:
                raise BadRequest(f"{WHERE}.prefixes", f"the pool holds IPv{pool.ip_version} prefixes")
            merged = list(ipaddress.collapse_addresses([*prefixes, *given]))  # type: ignore[arg-type]
            if merged != list(ipaddress.collapse_addresses(given)):  # type: ignore[arg-type]
                raise BadRequest(f"{WHERE}.prefixes", "Existing prefixes must be a subset of the new prefixes")
            prefixes = merged
        low, high, default = _lengths(body, pool.ip_version, min(p.prefixlen for p in prefixes), pool)
        return self.pools.update(replace(
            pool, name=field(body, "name", str, WHERE, False, pool.name),
            description=field(body, "description", str, WHERE, False, pool.description),
            prefixes=tuple(str(p) for p in prefixes), min_prefixlen=low, max_prefixlen=high,
            default_prefixlen=default, is_default=field(body, "is_default", bool, WHERE, False, pool.is_default)))

    def delete(self, token: Token, pool_id: str) -> None:
        """Delete a pool of the token's project."""
        pool = self.pool(token, pool_id)
        if pool.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"subnet pool {pool.id} belongs to another project")
        with self.store.db.transaction():
            if any(s.subnetpool_id == pool.id for s in self.store.subnets.list()):
                raise Conflict(f"Unable to delete subnet pool {pool.id}: it has allocations (subnets)")
            self.pools.delete(pool.id)


def pool_view(pool: SubnetPool) -> dict[str, Any]:
    """A subnet pool as Neutron shows it."""
    return {"id": pool.id, "name": pool.name, "ip_version": pool.ip_version, "prefixes": list(pool.prefixes),
            "min_prefixlen": str(pool.min_prefixlen), "max_prefixlen": str(pool.max_prefixlen),
            "default_prefixlen": str(pool.default_prefixlen), "default_quota": None, "address_scope_id": None,
            "shared": pool.shared, "is_default": pool.is_default, "description": pool.description,
            **stamps(pool.project_id, pool.tags)}


class SubnetPools:
    """/network/v2.0/subnetpools[/{item_id}]."""

    def __init__(self, config: ApiConfig, pools: SubnetPoolStore):
        self.config = config
        self.pools = pools

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"subnetpools": filtered(req, [pool_view(p) for p in self.pools.visible(token_of(req))])})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        create_all(req, resp, self.config.max_json_body, WHERE, "subnetpools",
                   lambda body: self.pools.create(token, body), lambda pool: self.pools.delete(token, pool.id),
                   pool_view)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"subnetpool": selected(req, pool_view(self.pools.pool(token_of(req), item_id)))})

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        pool = self.pools.update(token_of(req), item_id, read_json(req, self.config.max_json_body, WHERE))
        send(resp, {"subnetpool": pool_view(pool)})

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self.pools.delete(token_of(req), item_id)
        resp.status = 204
