"""Token checking for every resource not marked `public`, and the admin-role rule."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import Forbidden, Unauthorized
from api.identity.access_rules import allows
from api.identity.tokens import Token
from api.identity.verifier import TokenVerifier


class AuthMiddleware:
    """Puts the verified token in `req.context.token`; 401 without a valid one, or for a request the access
    rules of the token's application credential do not allow.

    Version documents and token issue are `public` (clients send no token there).
    """

    def __init__(self, verifier: TokenVerifier):
        self.verifier = verifier

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        token = self.verifier.verify(req.get_header("X-Auth-Token"))
        rules = self.verifier.access_rules(token)
        if rules and not allows(rules, req.method, req.path):
            # keystonemiddleware answers 401 too: the token is not valid for this request
            raise Unauthorized("the token's application credential access rules do not allow this request")
        req.context.token = token


def token_of(req: falcon.Request) -> Token:
    """The request's verified token."""
    return req.context.token


def require_admin(token: Token, what: str) -> None:
    """Forbidden unless the token carries the admin role."""
    if not token.is_admin:
        raise Forbidden(f"{what} requires the admin role")
