"""Keystone's URLs."""

from __future__ import annotations

import falcon

from api import errors
from api.change_counter import ChangeCounters
from api.config import config_path
from api.context import ApiContext
from api.http import Discovery
from api.identity import app_credential_resources as a
from api.identity import directory as d
from api.identity import resources as r
from api.identity.app_credentials import AppCredentials
from api.identity.login import PasswordCheck
from api.identity.revocation import RevokedTokens
from api.identity.store import Accounts, IdentityStore
from api.identity.throttle import FailureThrottle, Limits, Throttled
from api.identity.verifier import TokenVerifier


def token_verifier(ctx: ApiContext) -> TokenVerifier:
    """The token checks of every request (one per process: it remembers verified tokens)."""
    counters = ChangeCounters.next_to(config_path(ctx.layout))
    return TokenVerifier(ctx.signer, Accounts(config_path(ctx.layout), ctx.config, counters),
                         RevokedTokens(ctx.db, counters), AppCredentials(ctx.db, counters))


def _throttled(req: falcon.Request, resp: falcon.Response, ex: Throttled, params: dict) -> None:
    errors.handle_api_error(req, resp, ex, params)
    resp.set_header("Retry-After", str(ex.retry_after))


def add_routes(app: falcon.App, ctx: ApiContext, verifier: TokenVerifier) -> None:
    """Mount Keystone v3 under /identity."""
    store = IdentityStore(verifier.accounts, ctx.db)
    passwords = PasswordCheck(FailureThrottle(ctx.db, Limits.of(ctx.config), verifier.accounts.counters))
    app.add_error_handler(Throttled, _throttled)
    own_projects = r.UserProjects(store)
    credentials, body_limit = verifier.app_credentials, ctx.config.max_json_body
    app.add_route("/identity", Discovery(lambda base: {"versions": {"values": [r.version_document(base)]}}, 300))
    app.add_route("/identity/v3", Discovery(lambda base: {"version": r.version_document(base)}))
    app.add_route("/identity/v3/auth/tokens", r.Tokens(ctx.config, store, ctx.signer, verifier, passwords))
    app.add_route("/identity/v3/auth/projects", own_projects)
    app.add_route("/identity/v3/auth/catalog", d.AuthCatalog(ctx.config))
    app.add_route("/identity/v3/auth/domains", d.AuthDomains())
    app.add_route("/identity/v3/domains", d.Domains())
    app.add_route("/identity/v3/domains/{domain_id}", d.DomainItem())
    app.add_route("/identity/v3/projects", r.Projects(ctx.config, store))
    app.add_route("/identity/v3/projects/{project_id}", r.ProjectItem(store, body_limit))
    app.add_route("/identity/v3/projects/{project_id}/users/{user_id}/roles", d.ProjectUserRoles(store))
    app.add_route("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", d.ProjectUserRole(store))
    app.add_route("/identity/v3/roles", d.Roles(store))
    app.add_route("/identity/v3/roles/{role_id}", d.RoleItem(store))
    app.add_route("/identity/v3/role_assignments", d.RoleAssignments(store))
    app.add_route("/identity/v3/users", r.Users(store, body_limit))
    app.add_route("/identity/v3/users/{user_id}", r.UserItem(store, body_limit, credentials))
    app.add_route("/identity/v3/users/{user_id}/projects", own_projects)
    app.add_route("/identity/v3/users/{user_id}/password", r.UserPassword(store, passwords, body_limit))
    app.add_route("/identity/v3/users/{user_id}/application_credentials",
                  a.AppCredentialList(store, credentials, body_limit))
    app.add_route("/identity/v3/users/{user_id}/application_credentials/{credential_id}",
                  a.AppCredentialItem(credentials))
    app.add_route("/identity/v3/users/{user_id}/access_rules", a.AccessRuleList(store, credentials))
    app.add_route("/identity/v3/users/{user_id}/access_rules/{access_rule_id}", a.AccessRuleItem(credentials))
