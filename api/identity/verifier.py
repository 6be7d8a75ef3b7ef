"""Whether a token is good now: signed and unexpired, issued under its user's current password and roles, not revoked.

Both later checks read state every worker process shares (the configuration
file, the revocation and application credential tables in state.db). A
token stays good while its user keeps every role it carries on its project. A verified token's claims are
remembered per process; so is its standing (current stamp, not revoked), but
only while the shared credentials counter (api/change_counter.py) keeps the
value it had when the standing was read, and for at most RECHECK_SECONDS. A
password or role change written by api.config.write_document, and a
revocation by any process, bump that counter: the next request in every
process sees them. Without a change, a request costs no file or database
access.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from api.change_counter import RECHECK_SECONDS, Slot
from api.config import ApiConfig
from api.errors import Unauthorized
from api.identity.access_rules import AccessRule
from api.identity.app_credentials import AppCredentials
from api.identity.revocation import RevokedTokens, token_digest
from api.identity.store import Accounts
from api.identity.tokens import Token, TokenSigner

VERIFIED_TOKENS = 4096  # remembered verified tokens per process (forgotten all at once when full)


@dataclass(frozen=True)
class _Standing:
    """What a user's tokens must match now: the credential stamp, and the roles per project id."""

    stamp: str
    roles: dict[str, frozenset[str]]


@dataclass
class _Verified:
    """A token whose signature checked out, and when the revocation table last said it is not revoked."""

    token: Token
    digest: str
    unrevoked_at: int | None = None  # the credentials counter read before that look-up
    recheck_after: float = 0.0  # monotonic: look again after this even without a bump


class TokenVerifier:
    """Verifies tokens for the auth middleware and Keystone's token routes; revokes them."""

    def __init__(self, signer: TokenSigner, accounts: Accounts, revoked: RevokedTokens,
                 app_credentials: AppCredentials):
        self.signer = signer
        self.accounts = accounts
        self.revoked = revoked
        self.app_credentials = app_credentials
        # Token text -> its claims: a client sends the same token many times, and the
        # signature of a given text never changes; the expiry is checked on every use.
        self._verified: dict[str, _Verified] = {}
        self._stamps: tuple[ApiConfig | None, dict[str, _Standing]] = (None, {})
        self._rules: dict[str, tuple[AccessRule, ...]] = {}  # application credential id -> its access rules

    def _current_stamps(self) -> dict[str, _Standing]:
        """User id -> credential stamp and roles, as the configuration file says now (recomputed when it changes)."""
        config = self.accounts.current()
        seen, stamps = self._stamps
        if seen is not config:
            # A disabled project's roles count for nothing: its tokens are refused.
            project_ids = {p.name: p.id for p in config.projects if p.enabled}
            stamps = {user.id: _Standing(self.signer.stamp(user),
                                         {project_ids[name]: frozenset(roles) for name, roles in user.roles.items()
                                          if name in project_ids})
                      for user in config.users}
            self._stamps = (config, stamps)
        return stamps

    def verify(self, text: str | None) -> Token:
        """The token's claims; Unauthorized if missing, forged, expired, outdated by its user's change, or revoked."""
        if not text:
            raise Unauthorized("the request needs an X-Auth-Token header")
        entry = self._verified.get(text)
        if entry is None or entry.token.expires_at <= time.time():
            token = self.signer.verify(text)
            entry = _Verified(token, token_digest(text))
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[text] = entry
        token = entry.token
        standing = self._current_stamps().get(token.user_id)
        if (standing is None or standing.stamp != token.stamp
                or not standing.roles.get(token.project_id, frozenset()).issuperset(token.roles)):
            raise Unauthorized("the token was issued before its user's password or roles changed "
                               "(or the user was disabled or removed): authenticate again")
        if self._revoked(entry):
            raise Unauthorized("the token has been revoked")
        return token

    def _revoked(self, entry: _Verified) -> bool:
        """Whether the revocation table lists the token, looked up again only after a bump or RECHECK_SECONDS."""
        changes = self.revoked.counters.value(Slot.CREDENTIALS)  # before the look-up: a later bump is seen next time
        if entry.unrevoked_at == changes and time.monotonic() < entry.recheck_after:
            return False
        if entry.digest in self.revoked:
            return True
        if entry.token.app_cred_id and not self.app_credentials.exists(entry.token.app_cred_id):
            return True  # its application credential was deleted
        entry.unrevoked_at, entry.recheck_after = changes, time.monotonic() + RECHECK_SECONDS
        return False

    def access_rules(self, token: Token) -> tuple[AccessRule, ...]:
        """The access rules of the token's application credential (none: not limited); a credential never
        changes, so they are remembered per process."""
        if not token.app_cred_id:
            return ()
        rules = self._rules.get(token.app_cred_id)
        if rules is None:
            credential = self.app_credentials.get(token.app_cred_id)
            rules = credential.access_rules if credential is not None else ()
            if len(self._rules) >= VERIFIED_TOKENS:
                self._rules.clear()
            self._rules[token.app_cred_id] = rules
        return rules

    def revoke(self, text: str, token: Token) -> None:
        """Revoke `text` (verified: `token` is its claims) for every worker process, until it expires."""
        self.revoked.add(token_digest(text), token.expires_at)
