"""Keystone's URLs."""

from __future__ import annotations

import falcon

from api.context import ApiContext
from api.http import Discovery
from api.identity import resources as r
from api.config import config_path
from api.identity.store import Accounts, IdentityStore


def add_routes(app: falcon.App, ctx: ApiContext) -> None:
    """Mount Keystone v3 under /identity."""
    store = IdentityStore(Accounts(config_path(ctx.layout), ctx.config), ctx.db)
    own_projects = r.UserProjects(store)
    app.add_route("/identity", Discovery(lambda base: {"versions": {"values": [r.version_document(base)]}}, 300))
    app.add_route("/identity/v3", Discovery(lambda base: {"version": r.version_document(base)}))
    app.add_route("/identity/v3/auth/tokens", r.Tokens(ctx.config, store, ctx.signer))
    app.add_route("/identity/v3/auth/projects", own_projects)
    app.add_route("/identity/v3/projects", r.Projects(ctx.config, store))
    app.add_route("/identity/v3/projects/{project_id}", r.ProjectItem(store))
    app.add_route("/identity/v3/users", r.Users(store))
    app.add_route("/identity/v3/users/{user_id}", r.UserItem(store))
    app.add_route("/identity/v3/users/{user_id}/projects", own_projects)
