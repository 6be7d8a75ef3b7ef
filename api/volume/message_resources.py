"""GET /volume/v3/messages, GET and DELETE /volume/v3/messages/{id}: Cinder's user messages (microversion 3.3;
before it, 404 as in Cinder). A project sees its own messages, an admin every project's (as Cinder's)."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.errors import NotFound
from api.http import isotime, send
from api.volume import microversion
from api.volume.messages import MessageStore, UserMessage


def message_view(message: UserMessage, base_url: str) -> dict[str, Any]:
    """A message as Cinder's API shows it."""
    return {
        "id": message.id, "event_id": message.event_id, "user_message": message.user_message,
        "message_level": message.message_level, "resource_type": message.resource_type,
        "resource_uuid": message.resource_uuid, "request_id": message.request_id,
        "created_at": isotime(message.created, micro=True), "guaranteed_until": isotime(message.expires, micro=True),
        "links": [{"rel": "self", "href": f"{base_url}/volume/v3/messages/{message.id}"},
                  {"rel": "bookmark", "href": f"{base_url}/volume/messages/{message.id}"}],
    }


def _require_version(req: falcon.Request) -> None:
    if microversion.version_of(req) < microversion.MESSAGES:
        raise NotFound(f"The resource could not be found (messages need microversion {microversion.MESSAGES}).")


class Messages:
    """GET /volume/v3/messages."""

    def __init__(self, messages: MessageStore):
        self.messages = messages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_version(req)
        send(resp, {"messages": [message_view(m, req.prefix) for m in self.messages.visible(token_of(req))]})


class MessageItem:
    """GET and DELETE /volume/v3/messages/{id} (204)."""

    def __init__(self, messages: MessageStore):
        self.messages = messages

    def on_get(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        _require_version(req)
        send(resp, {"message": message_view(self.messages.get(token_of(req), message_id), req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        _require_version(req)
        self.messages.delete(token_of(req), message_id)
        resp.status = 204
