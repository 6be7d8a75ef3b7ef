"""Whether a token is good now: signed and unexpired, issued under its user's current password and roles, not revoked.

Both later checks read state every worker process shares (the configuration
file, the revocation table in state.db), on every request: a verified
token's claims are remembered per process, its standing never is.
"""

from __future__ import annotations

import time

from api.config import ApiConfig
from api.errors import Unauthorized
from api.identity.revocation import RevokedTokens, token_digest
from api.identity.store import Accounts
from api.identity.tokens import Token, TokenSigner

VERIFIED_TOKENS = 4096  # remembered verified tokens per process (forgotten all at once when full)


class TokenVerifier:
    """Verifies tokens for the auth middleware and Keystone's token routes; revokes them."""

    def __init__(self, signer: TokenSigner, accounts: Accounts, revoked: RevokedTokens):
        self.signer = signer
        self.accounts = accounts
        self.revoked = revoked
        # Token text -> (claims, digest): a client sends the same token many times, and the
        # signature of a given text never changes; the expiry is checked on every use.
        self._verified: dict[str, tuple[Token, str]] = {}
        self._stamps: tuple[ApiConfig | None, dict[str, str]] = (None, {})

    def _current_stamps(self) -> dict[str, str]:
        """User id -> credential stamp, as the configuration file says now (recomputed when it changes)."""
        config = self.accounts.current()
        seen, stamps = self._stamps
        if seen is not config:
            stamps = {user.id: self.signer.stamp(user) for user in config.users}
            self._stamps = (config, stamps)
        return stamps

    def verify(self, text: str | None) -> Token:
        """The token's claims; Unauthorized if missing, forged, expired, outdated by its user's change, or revoked."""
        if not text:
            raise Unauthorized("the request needs an X-Auth-Token header")
        entry = self._verified.get(text)
        if entry is None or entry[0].expires_at <= time.time():
            token = self.signer.verify(text)
            entry = (token, token_digest(text))
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[text] = entry
        token, digest = entry
        if self._current_stamps().get(token.user_id) != token.stamp:
            raise Unauthorized("the token was issued before its user's password or roles changed "
                               "(or the user was removed): authenticate again")
        if digest in self.revoked:
            raise Unauthorized("the token has been revoked")
        return token

    def revoke(self, text: str, token: Token) -> None:
        """Revoke `text` (verified: `token` is its claims) for every worker process, until it expires."""
        self.revoked.add(token_digest(text), token.expires_at)
