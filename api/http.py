"""Request and response helpers shared by every service."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

import falcon

from api.errors import BadRequest, TooLarge
from provisioner.excerpt import describe


def read_json_value(req: falcon.Request, max_bytes: int, malformed: str | None = None) -> Any:
    """The body parsed as JSON (an empty body is null), refusing bodies over `max_bytes` with 413.

    A body that is not JSON is a 400 on `body`: `malformed JSON: <why>`, or the caller's own `malformed` wording.
    The stream is read once: the value is kept on `req.context` (api/validation.py reads it before the responder).
    """
    cached = getattr(req.context, _BODY, _UNREAD)
    if cached is not _UNREAD:
        return cached
    data = _parse(req, max_bytes, malformed)
    setattr(req.context, _BODY, data)
    return data


_BODY = "json_body"  # the req.context attribute holding the parsed body
_UNREAD = object()


def _parse(req: falcon.Request, max_bytes: int, malformed: str | None) -> Any:
    if req.content_length is not None and req.content_length > max_bytes:
        raise TooLarge(f"request body of {req.content_length} bytes exceeds the limit of {max_bytes}")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise TooLarge(f"request body exceeds the limit of {max_bytes} bytes")
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:  # UnicodeDecodeError (bytes that are no UTF) is one
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply"
    else:
        try:
            # A \ud800-style escape alone decodes to a lone surrogate, which no store can encode.
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BadRequest("body", "malformed JSON: a \\u escape is a lone UTF-16 surrogate, not text") from None
        return data
    raise BadRequest("body", malformed or f"malformed JSON: {reason}")


def read_json(req: falcon.Request, max_bytes: int, key: str | None = None) -> dict[str, Any]:
    """The JSON object in the body (or its `key` member), refusing bodies over `max_bytes` with 413."""
    data = read_json_value(req, max_bytes)
    if not isinstance(data, dict):
        raise BadRequest("body", "must be a JSON object")
    if key is None:
        return data
    inner = data.get(key)
    if not isinstance(inner, dict):
        raise BadRequest(key, f"the body needs a {key!r} object")
    return inner


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, required: bool = True,
          default: Any = None) -> Any:
    """`data[name]` checked against `kind`; BadRequest names `where.name`."""
    if name not in data or data[name] is None:
        if required:
            raise BadRequest(f"{where}.{name}", "is required")
        return default
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadRequest(f"{where}.{name}", f"{describe(value)} is not a {names}")
    return value


def given(body: dict[str, Any], name: str, default: Any) -> Any:
    """`body[name]` of a body whose form api/openapi.yaml checked (api/validation.py); absent or null is
    `default`."""
    value = body.get(name)
    return default if value is None else value


def send(resp: falcon.Response, body: Any, status: int = 200) -> None:
    """A JSON response."""
    send_json_text(resp, json.dumps(body), status)


def send_json_text(resp: falcon.Response, text: str, status: int = 200) -> None:
    """A JSON response already serialised (a body that is the same for every request)."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = text


def isotime(epoch: float, micro: bool = False) -> str:
    """An ISO 8601 UTC time, as OpenStack writes it (`Z`, seconds or microseconds)."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


class Discovery:
    """A public GET answering a version document built from the request's base URL (clients send no token)."""

    public = True

    def __init__(self, document: Callable[[str], Any], status: int = 200):
        self.document = document
        self.status = status

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, self.document(req.prefix), self.status)
