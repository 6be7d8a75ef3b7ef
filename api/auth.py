"""Token checking for every resource not marked `public`, and the admin-role rule."""

from __future__ import annotations

import time
from typing import Any

import falcon

from api.errors import Forbidden
from api.identity.tokens import Token, TokenSigner

VERIFIED_TOKENS = 4096  # remembered verified tokens per process (forgotten all at once when full)


class AuthMiddleware:
    """Puts the verified token in `req.context.token`; 401 without a valid one.

    Version documents and token issue are `public` (clients send no token there).
    """

    def __init__(self, signer: TokenSigner):
        self.signer = signer
        # Token text -> its verified claims: a client sends the same token many times, and
        # the signature of a given text never changes; the expiry is checked on every use.
        self._verified: dict[str, Token] = {}

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        text = req.get_header("X-Auth-Token")
        token = self._verified.get(text) if text else None
        if token is None or token.expires_at <= time.time():
            token = self.signer.verify(text)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[text] = token
        req.context.token = token


def token_of(req: falcon.Request) -> Token:
    """The request's verified token."""
    return req.context.token


def require_admin(token: Token, what: str) -> None:
    """Forbidden unless the token carries the admin role."""
    if not token.is_admin:
        raise Forbidden(f"{what} requires the admin role")
