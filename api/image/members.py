"""Glance image members: a shared image offered to other projects, each accepting or rejecting it.

Only an image of visibility `shared` has members. Its owner adds and removes them;
each member project alone sets its own status (pending -> accepted/rejected). A
member sees the image whatever its status; it is in the member's image list once
accepted (or when the list asks for `member_status`), as in Glance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import falcon

from api.auth import token_of
from api.config import ApiConfig
from api.db import Database, Table
from api.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from api.http import isotime, read_json, send
from api.identity.tokens import Token
from provisioner.excerpt import cut

if TYPE_CHECKING:
    from api.image.catalog import ImageCatalog

PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
STATUSES = (PENDING, ACCEPTED, REJECTED)
MAX_MEMBERS = 128  # Glance's image_member_quota default


@dataclass(frozen=True)
class ImageMember:
    """One project's membership of one image."""

    id: str  # image_id/member_id: one row per pair
    image_id: str
    member_id: str
    status: str = PENDING
    created: float = 0.0
    updated: float = 0.0


def member_view(member: ImageMember) -> dict[str, Any]:
    """A member as Glance shows it."""
    return {"image_id": member.image_id, "member_id": member.member_id, "status": member.status,
            "created_at": isotime(member.created), "updated_at": isotime(member.updated),
            "schema": "/v2/schemas/member"}


class Members:
    """The image_members table: who an image is shared with."""

    def __init__(self, db: Database):
        self.rows = Table(db, "image_members", ImageMember, scope="member_id")

    def of_project(self, project_id: str) -> dict[str, str]:
        """image id -> the project's member status, for every image shared with it."""
        return {m.image_id: m.status for m in self.rows.list([project_id])}

    def of_image(self, image_id: str) -> list[ImageMember]:
        """The image's members, oldest first."""
        return [m for m in self.rows.list() if m.image_id == image_id]

    def get(self, image_id: str, member_id: str) -> ImageMember | None:
        """The membership of `member_id` in `image_id`, or None."""
        return self.rows.get(f"{image_id}/{member_id}")

    def add(self, image_id: str, member_id: str) -> ImageMember:
        """A new pending member; Conflict if it is one already."""
        if self.get(image_id, member_id) is not None:
            raise Conflict(f"Member {cut(member_id)} already exists on image {image_id}")
        if len(self.of_image(image_id)) >= MAX_MEMBERS:
            raise TooLarge(f"image {image_id} has {MAX_MEMBERS} members already: the limit")
        now = time.time()
        return self.rows.insert(ImageMember(f"{image_id}/{member_id}", image_id, member_id, PENDING, now, now))

    def set_status(self, member: ImageMember, status: str) -> ImageMember:
        """The membership with its new status."""
        return self.rows.update(replace(member, status=status, updated=time.time()))

    def remove(self, image_id: str, member_id: str) -> None:
        """Drop one membership."""
        self.rows.delete(f"{image_id}/{member_id}")

    def drop_image(self, image_id: str) -> None:
        """Drop every membership of a deleted image."""
        for member in self.of_image(image_id):
            self.rows.delete(member.id)


class ImageMembers:
    """GET and POST /image/v2/images/{id}/members."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        token = token_of(req)
        image = self.catalog.get(token, image_id)
        members = self.catalog.members.of_image(image_id)
        if not token.is_admin and image.owner != token.project_id:
            members = [m for m in members if m.member_id == token.project_id]  # a member sees itself only
        send(resp, {"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"})

    def on_post(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        token = token_of(req)
        member_id = read_json(req, self.config.max_json_body)["member"]
        image = self.catalog.shareable(token, image_id)
        if member_id == image.owner:
            raise BadRequest("member", "the image's owner cannot be one of its members")
        send(resp, member_view(self.catalog.members.add(image_id, member_id)))


class ImageMemberItem:
    """GET, PUT (the member's status) and DELETE /image/v2/images/{id}/members/{member_id}."""

    def __init__(self, config: ApiConfig, catalog: ImageCatalog):
        self.config = config
        self.catalog = catalog

    def _member(self, token: Token, image_id: str, member_id: str) -> ImageMember:
        image = self.catalog.get(token, image_id)
        member = self.catalog.members.get(image_id, member_id)
        # Another member's row is not the caller's to see (Glance answers 404 as for none).
        if member is None or (not token.is_admin and token.project_id not in (image.owner, member_id)):
            raise NotFound(f"{cut(member_id)} is not a member of image {image_id}")
        return member

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str) -> None:
        send(resp, member_view(self._member(token_of(req), image_id, member_id)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str) -> None:
        token = token_of(req)
        status = read_json(req, self.config.max_json_body)["status"]  # one of STATUSES (api/openapi.yaml)
        member = self._member(token, image_id, member_id)
        if token.project_id != member_id:
            raise Forbidden(f"only the member project {cut(member_id)} may accept or reject image {image_id}")
        send(resp, member_view(self.catalog.members.set_status(member, status)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str, member_id: str) -> None:
        token = token_of(req)
        self._member(token, image_id, member_id)
        self.catalog.shareable(token, image_id)  # the owner (or an admin) removes members
        self.catalog.members.remove(image_id, member_id)
        resp.status = 204
