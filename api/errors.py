"""API errors as exceptions, and the one place that turns them into OpenStack error bodies.

Each service has its own error body style; the first path segment tells which:
Keystone and Glance `{"error": {"code", "title", "message"}}`, Nova (and
Cinder) `{"itemNotFound": {"code", "message"}}`, Neutron `{"NeutronError":
{"type", "message", "detail"}}`.
"""

from __future__ import annotations

import json
import logging

import falcon

log = logging.getLogger("api")


class ApiError(Exception):
    """An expected failure with an HTTP status; `kind` is Nova's error key, `title` Keystone's."""

    status = 500
    kind = "computeFault"
    title = "Internal Server Error"
    neutron_type: str | None = None  # Neutron's exception name where clients match it (else by status)

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    """Malformed or invalid input; the message names the field."""

    status, kind, title = 400, "badRequest", "Bad Request"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class Unauthorized(ApiError):
    status, kind, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ApiError):
    status, kind, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    status, kind, title = 404, "itemNotFound", "Not Found"


class Conflict(ApiError):
    status, kind, title = 409, "conflictingRequest", "Conflict"


class TooLarge(ApiError):
    status, kind, title = 413, "overLimit", "Request Entity Too Large"


_NEUTRON_TYPES = {400: "BadRequest", 401: "NotAuthorized", 403: "Forbidden", 404: "NotFound",
                  409: "Conflict", 413: "RequestEntityTooLarge", 500: "InternalServerError"}


def error_body(service: str, status: int, kind: str, title: str, message: str,
               neutron_type: str | None = None) -> dict:
    """The error document `service` (first path segment) answers with."""
    if service == "network":
        return {"NeutronError": {"type": neutron_type or _NEUTRON_TYPES.get(status, "Error"), "message": message,
                                 "detail": ""}}
    if service in ("compute", "volume"):
        return {kind: {"code": status, "message": message}}
    return {"error": {"code": status, "title": title, "message": message}}


def _write(req: falcon.Request, resp: falcon.Response, status: int, kind: str, title: str, message: str,
           neutron_type: str | None = None) -> None:
    service = req.path.strip("/").split("/", 1)[0]
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(error_body(service, status, kind, title, message, neutron_type))
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Keystone uri="%s/identity"' % req.prefix)


def handle_api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, params: dict) -> None:
    """falcon error handler for ApiError."""
    _write(req, resp, ex.status, ex.kind, ex.title, ex.message, ex.neutron_type)


_FALCON_KINDS = {404: "itemNotFound", 405: "badMethod", 400: "badRequest", 413: "overLimit"}


def handle_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict) -> None:
    """falcon's own errors (unknown route, wrong method) in the same bodies."""
    status = ex.status_code
    message = ex.description or ex.title or "error"
    _write(req, resp, status, _FALCON_KINDS.get(status, "error"), ex.title or "", message)
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """A bug: logged with its traceback, answered as a 500 without internals."""
    log.exception("unhandled error on %s %s", req.method, req.path)
    _write(req, resp, 500, "computeFault", "Internal Server Error",
           "internal error: see the API server's log")


def handle_database_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """The API's PostgreSQL cannot be reached (stopped, restarting, network gone): a 503 the client may retry,
    answered within the connect timeout rather than hanging; logged in one line (not a bug: no traceback)."""
    log.error("database unavailable on %s %s: %s", req.method, req.path, " ".join(str(ex).split()))
    _write(req, resp, 503, "computeFault", "Service Unavailable",
           "the API's database is unavailable: retry later (see the API server's log)")


def install(app: falcon.App) -> None:
    """Register the handlers; falcon picks the most specific class, so order does not matter."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(ApiError, handle_api_error)
