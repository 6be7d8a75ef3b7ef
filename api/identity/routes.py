"""Keystone's URLs."""

from __future__ import annotations

import falcon

from api import errors
from api.change_counter import ChangeCounters
from api.config import config_path
from api.context import ApiContext
from api.http import Discovery
from api.identity import resources as r
from api.identity.login import PasswordCheck
from api.identity.revocation import RevokedTokens
from api.identity.store import Accounts, IdentityStore
from api.identity.throttle import FailureThrottle, Limits, Throttled
from api.identity.verifier import TokenVerifier


def token_verifier(ctx: ApiContext) -> TokenVerifier:
    """The token checks of every request (one per process: it remembers verified tokens)."""
    counters = ChangeCounters.next_to(config_path(ctx.layout))
    return TokenVerifier(ctx.signer, Accounts(config_path(ctx.layout), ctx.config, counters),
                         RevokedTokens(ctx.db, counters))


def _throttled(req: falcon.Request, resp: falcon.Response, ex: Throttled, params: dict) -> None:
    errors.handle_api_error(req, resp, ex, params)
    resp.set_header("Retry-After", str(ex.retry_after))


def add_routes(app: falcon.App, ctx: ApiContext, verifier: TokenVerifier) -> None:
    """Mount Keystone v3 under /identity."""
    store = IdentityStore(verifier.accounts, ctx.db)
    passwords = PasswordCheck(FailureThrottle(ctx.db, Limits.of(ctx.config), verifier.accounts.counters))
    app.add_error_handler(Throttled, _throttled)
    own_projects = r.UserProjects(store)
    app.add_route("/identity", Discovery(lambda base: {"versions": {"values": [r.version_document(base)]}}, 300))
    app.add_route("/identity/v3", Discovery(lambda base: {"version": r.version_document(base)}))
    app.add_route("/identity/v3/auth/tokens", r.Tokens(ctx.config, store, ctx.signer, verifier, passwords))
    app.add_route("/identity/v3/auth/projects", own_projects)
    app.add_route("/identity/v3/projects", r.Projects(ctx.config, store))
    app.add_route("/identity/v3/projects/{project_id}", r.ProjectItem(store))
    app.add_route("/identity/v3/users", r.Users(store))
    app.add_route("/identity/v3/users/{user_id}", r.UserItem(store))
    app.add_route("/identity/v3/users/{user_id}/projects", own_projects)
