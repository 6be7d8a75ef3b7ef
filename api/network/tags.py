"""Neutron's tag extensions (tag, tag-ext, standard-attr-tag): /network/v2.0/{collection}/{id}/tags[/{tag}].

A resource's tags are a member of its record; whoever may see the resource may read them, its project or an
admin may change them. The list filters (tags, tags-any, not-tags, not-tags-any) are views.filtered's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound
from api.http import read_json, send
from api.identity.tokens import Token
from provisioner.excerpt import cut, describe

# Neutron's MAX_TAG_LEN; the count is this API's bound (Nova's limit on a server's tags).
MAX_TAG_LENGTH = 255
MAX_TAGS = 50


@dataclass(frozen=True)
class Taggable:
    """One collection whose records carry tags: its table and how a token finds one of them (NotFound if it
    may not see it)."""

    table: Table[Any]
    find: Callable[[Token, str], Any]
    # Why a visible resource that is no record of `table` keeps its tags as they are (the configured default
    # network, a server's NIC).
    elsewhere: str = "is configured, not created through the API"


def _checked(tag: str) -> str:
    if not tag or len(tag) > MAX_TAG_LENGTH or not tag.isprintable():
        raise BadRequest("tag", f"{describe(tag)} is not a tag (1 to {MAX_TAG_LENGTH} printable characters)")
    return tag


class Tags:
    """The tags of one collection's records: GET/PUT/DELETE .../tags, and GET/PUT/DELETE .../tags/{tag}."""

    def __init__(self, config: ApiConfig, taggable: Taggable):
        self.config = config
        self.taggable = taggable

    def _writable(self, token: Token, item_id: str) -> Any:
        """The stored record the token may change the tags of."""
        found = self.taggable.find(token, item_id)
        record = self.taggable.table.get(found.id)
        if record is None:  # visible but not a record of this table
            raise Conflict(f"{cut(item_id)} {self.taggable.elsewhere}: its tags cannot change")
        if record.project_id != token.project_id and not token.is_admin:
            raise Forbidden(f"{cut(item_id)} belongs to another project: only its project or an admin may tag it")
        return record

    def _change(self, token: Token, item_id: str, change: Callable[[tuple[str, ...]], list[str]]) -> tuple[str, ...]:
        """Replace the record's tags by `change(its tags)`, read and written in one transaction."""
        with self.taggable.table.db.transaction():
            record = self._writable(token, item_id)
            unique = tuple(dict.fromkeys(_checked(t) for t in change(record.tags)))
            if len(unique) > MAX_TAGS:
                raise BadRequest("tags", f"has more than {MAX_TAGS} tags")
            self.taggable.table.update(replace(record, tags=unique))
            return unique

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        send(resp, {"tags": list(self.taggable.find(token_of(req), item_id).tags)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        tags = read_json(req, self.config.max_json_body)["tags"]  # a list of strings, per api/openapi.yaml
        send(resp, {"tags": list(self._change(token_of(req), item_id, lambda _: tags))})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        self._change(token_of(req), item_id, lambda _: [])
        resp.status = 204

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, item_id: str, tag: str) -> None:
        if tag not in self.taggable.find(token_of(req), item_id).tags:
            raise NotFound(f"Tag {cut(tag)} could not be found for resource {cut(item_id)}.")
        resp.status = 204

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, item_id: str, tag: str) -> None:
        self._change(token_of(req), item_id, lambda tags: [*tags, tag])
        resp.status = 201

    def on_delete_one(self, req: falcon.Request, resp: falcon.Response, item_id: str, tag: str) -> None:
        def without(tags: tuple[str, ...]) -> list[str]:
            if tag not in tags:
                raise NotFound(f"Tag {cut(tag)} could not be found for resource {cut(item_id)}.")
            return [t for t in tags if t != tag]

        self._change(token_of(req), item_id, without)
        resp.status = 204
