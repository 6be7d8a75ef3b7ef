"""Cinder's user messages: why a volume or snapshot operation failed, told to the project that asked for it.

Cinder has no `fault` member on a volume; a failure leaves a message instead
(GET/DELETE /v3/{project_id}/messages[/{id}], microversion 3.3; here under
/volume/v3, the project being the token's). The message says what failed and
a short, cleaned cut of the reason: never a host path (a file name at most),
never more than REASON_LIMIT characters. The whole reason goes to the API
server's log (logger `api.volume`) for the operator, with the message's id.
A message is kept MESSAGE_TTL seconds (Cinder's message_ttl default) after it was left.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass

from api.db import Database, Table
from api.errors import NotFound
from api.identity.tokens import Token
from api.request_id import new_request_id

log = logging.getLogger("api.volume")

MESSAGE_TTL = 30 * 24 * 3600  # seconds: Cinder's message_ttl default (2592000)
REASON_LIMIT = 200  # characters of the reason a user message keeps
ERROR_LEVEL = "ERROR"  # Cinder's only message_level
VOLUME, SNAPSHOT = "VOLUME", "SNAPSHOT"  # resource_type


@dataclass(frozen=True)
class Action:
    """What was being done, as Cinder's message_field.Action: an id in the event id and words in the message."""

    id: str
    words: str


# The ids of Cinder's cinder.message.message_field.Action as far as known here (001 and 002 are Cinder's;
# the others follow its numbering, unchecked against a Cinder tree); a message is read by its words.
ALLOCATE = Action("001", "schedule allocate volume")
ATTACH = Action("002", "attach volume")
COPY_VOLUME_TO_IMAGE = Action("005", "copy volume to image")
EXTEND = Action("007", "extend volume")
CREATE_SNAPSHOT = Action("009", "create snapshot")
DELETE_SNAPSHOT = Action("010", "delete snapshot")
DELETE_VOLUME = Action("013", "delete volume")
# Cinder's detail id 001, UNKNOWN_ERROR: the reason here is ours, told after it.
DETAIL = "001"

# An absolute host path of two or more components (not the `///system` of a libvirt URI, nor a URL's path).
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)")


def clean_reason(reason: str, limit: int = REASON_LIMIT) -> str:
    """`reason` as a user may read it: host paths cut to their last component (`…/vol-1.qcow2`),
    whitespace runs (Terraform's multi-line output) as one space, cut to `limit` characters (… if longer)."""
    text = " ".join(_PATH.sub(lambda m: f"…/{m.group(1)}", reason).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class UserMessage:
    """One user message about one volume or snapshot of a project."""

    id: str
    project_id: str
    resource_type: str  # VOLUME, SNAPSHOT
    resource_uuid: str
    event_id: str  # Cinder's form: VOLUME_<resource type>_<action id>_<detail id>
    user_message: str
    request_id: str
    created: float
    expires: float
    message_level: str = ERROR_LEVEL
    name: str | None = None  # the Table's name column: unused


class MessageStore:
    """The user messages, in the API database's table `api_volume_messages` (made at first use)."""

    def __init__(self, db: Database):
        self.messages = Table(db, "volume_messages", UserMessage)

    def record(self, project_id: str, resource_type: str, resource_uuid: str, action: Action,
               reason: str) -> UserMessage:
        """Leave a message for the project about a failed `action` on a resource; log the whole reason."""
        now = time.time()
        self._purge(now)
        message = UserMessage(id=str(uuid.uuid4()), project_id=project_id, resource_type=resource_type,
                              resource_uuid=resource_uuid,
                              event_id=f"VOLUME_{resource_type}_{action.id}_{DETAIL}",
                              user_message=f"{action.words}: {clean_reason(reason)}",
                              request_id=new_request_id(), created=now, expires=now + MESSAGE_TTL)
        log.warning("%s %s: %s failed (user message %s): %s", resource_type.lower(), resource_uuid, action.words,
                    message.id, reason)
        return self.messages.insert(message)

    def _purge(self, now: float) -> None:
        """Forget the messages past their guaranteed_until."""
        for message in self.messages.list():
            if message.expires <= now:
                self.messages.delete(message.id)

    def visible(self, token: Token) -> list[UserMessage]:
        """The live messages the token may see: its project's (every project's for an admin, as Cinder's)."""
        now = time.time()
        found = self.messages.list(None if token.is_admin else [token.project_id])
        return [m for m in found if m.expires > now]

    def get(self, token: Token, message_id: str) -> UserMessage:
        """One live message the token may see; another project's is NotFound, like a missing one."""
        found = self.messages.get(message_id)
        if (found is None or found.expires <= time.time()
                or (found.project_id != token.project_id and not token.is_admin)):
            raise NotFound(f"Message {message_id} could not be found.")
        return found

    def delete(self, token: Token, message_id: str) -> None:
        """Delete one message the token may see (NotFound otherwise)."""
        self.messages.delete(self.get(token, message_id).id)
