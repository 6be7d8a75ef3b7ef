"""Cinder's list queries: exact-match filters, sort (`sort=key:dir,…` or sort_key/sort_dir), marker, offset and
limit pagination with a `<collection>_links` next link, as Cinder's common.paginate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar
from urllib.parse import urlencode

import falcon

from api.errors import BadRequest, NotFound
from provisioner.excerpt import cut

T = TypeVar("T")
MAX_LIMIT = 1000  # Cinder's osapi_max_limit default: a larger limit is cut to it
SORT_KEYS = ("created_at", "updated_at", "id", "name", "size", "status", "display_name", "description",
             "display_description", "volume_id")
# Filters Cinder matches exactly (by the record's attribute of that name); `metadata` is a JSON object.
FILTERS = ("name", "status", "volume_id", "bootable", "availability_zone", "volume_type")
# Sort keys by their record attribute; Cinder also takes the v1 names display_name and display_description.
ATTRIBUTE = {"created_at": "created", "updated_at": "updated", "display_name": "name",
             "display_description": "description"}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of records, and the query of the next page (None on the last)."""

    items: list[T]
    next_query: str | None


def _limit(req: falcon.Request) -> int | None:
    text = req.get_param("limit")
    if text is None:
        return None
    if not text.isdigit():
        raise BadRequest("limit", f"{cut(text)} is not a non-negative integer")
    return min(int(text), MAX_LIMIT)


def _sorts(req: falcon.Request) -> list[tuple[str, bool]]:
    """(key, descending) pairs; Cinder's default is newest first."""
    pairs: list[tuple[str, str]] = []
    if req.get_param("sort"):
        for part in req.get_param("sort").split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "desc"))
    elif req.get_param("sort_key") or req.get_param("sort_dir"):
        pairs.append((req.get_param("sort_key") or "created_at", req.get_param("sort_dir") or "desc"))
    else:
        pairs.append(("created_at", "desc"))
    checked = []
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest("sort", f"key {cut(key)} is not one of {', '.join(SORT_KEYS)}")
        if direction.lower() not in ("asc", "desc"):
            raise BadRequest("sort", f"direction {cut(direction)} is not asc or desc")
        checked.append((ATTRIBUTE.get(key, key), direction.lower() == "desc"))
    return checked


def _value(record: Any, key: str) -> Any:
    value = getattr(record, key, None)
    if key == "bootable":
        return str(bool(value)).lower()
    if key == "availability_zone":
        return getattr(record, key, "nova")  # a volume's own; a snapshot has none
    return value


def _matches(record: Any, req: falcon.Request) -> bool:
    for key in FILTERS:
        wanted = req.get_param(key)
        if wanted is None:
            continue
        have = _value(record, key)
        if key == "bootable":  # true/false/True/1 alike
            wanted = str(wanted.lower() in ("true", "1", "yes", "t", "y", "on")).lower()
        if have != wanted:
            return False
    wanted_meta = req.get_param("metadata")
    if wanted_meta is not None:
        try:
            meta = json.loads(wanted_meta.replace("'", '"'))  # Cinder's clients send a Python dict's repr
        except ValueError:
            raise BadRequest("metadata", f"{cut(wanted_meta)} is not a JSON object") from None
        if not isinstance(meta, dict):
            raise BadRequest("metadata", "must be an object of key: value")
        have = getattr(record, "metadata", {}) or {}
        if any(have.get(k) != v for k, v in meta.items()):
            return False
    return True


def page(req: falcon.Request, records: Sequence[T]) -> Page[T]:
    """The page of `records` (filtered and sorted) the request's marker and limit ask for."""
    chosen = [r for r in records if _matches(r, req)]
    for key, descending in reversed(_sorts(req)):  # stable sorts, last key first
        numeric = key in ("size", "created", "updated")
        chosen.sort(key=lambda r: getattr(r, key) if numeric else str(getattr(r, key, "") or ""),
                    reverse=descending)
    marker = req.get_param("marker")
    if marker is not None:
        index = next((i for i, r in enumerate(chosen) if getattr(r, "id") == marker), None)
        if index is None:
            raise NotFound(f"Marker {cut(marker)} could not be found.")  # Cinder's MarkerNotFound: a 404
        chosen = chosen[index + 1:]
    offset = req.get_param("offset")
    if offset is not None:
        if not offset.isdigit():
            raise BadRequest("offset", f"{cut(offset)} is not a non-negative integer")
        chosen = chosen[int(offset):]
    limit = _limit(req)
    # Cinder links the next page whenever a page is full, even if nothing follows.
    if limit is None or len(chosen) < limit or limit == 0:
        return Page(chosen[:limit] if limit is not None else chosen, None)
    items = chosen[:limit]
    kept = [(k, v) for k, v in req.params.items() if k != "marker" and isinstance(v, str)]
    return Page(items, urlencode([*kept, ("marker", getattr(items[-1], "id"))]) if items else None)


def links(req: falcon.Request, collection: str, found: Page[Any]) -> dict[str, Any]:
    """`{collection}_links` with the next page's URL, when there is one (else nothing, as Cinder)."""
    if found.next_query is None:
        return {}
    return {f"{collection}_links": [{"rel": "next", "href": f"{req.prefix}{req.path}?{found.next_query}"}]}
