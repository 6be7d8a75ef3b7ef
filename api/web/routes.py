"""The status page's URLs, mounted on the API's app (api/app.py)."""

from __future__ import annotations

import falcon

from api.compute.models import ComputeStore
from api.context import ApiContext
from api.identity.login import PasswordCheck
from api.identity.store import IdentityStore
from api.identity.throttle import FailureThrottle, Limits
from api.identity.verifier import TokenVerifier
from api.image.catalog import ImageCatalog
from api.network.store import NetworkStore
from api.volume.store import VolumeStore
from api.web import pages as p
from api.web.sessions import SessionStore, WebSettings
from api.web.views import StatusViews

# HTML pages, not OpenStack operations: api/openapi.yaml does not describe them (tests/api/test_fuzz.py skips them).
PATHS = ("/", "/status", "/status/style.css", "/status/servers/{key}", "/status/domains/{key}", "/login", "/logout")


def add_routes(app: falcon.App, ctx: ApiContext, verifier: TokenVerifier, compute: ComputeStore,
               images: ImageCatalog, networks: NetworkStore, volumes: VolumeStore) -> None:
    """Mount the status page at / and /status, and its login at /login."""
    settings = WebSettings.from_environ()
    accounts = verifier.accounts
    sessions = SessionStore(ctx.db, settings, lambda: accounts.current().users, ctx.signer.stamp)
    # The same failure counters as Keystone's token route (api_auth_failures): a guess here counts there.
    passwords = PasswordCheck(FailureThrottle(ctx.db, Limits.of(ctx.config), accounts.counters))
    pages = p.Pages(settings, sessions, IdentityStore(accounts, ctx.db), passwords,
                    StatusViews(ctx.layout, compute, images, networks, volumes,
                                {f.id: f.name for f in ctx.config.flavors}))
    overview = p.Overview(pages)
    app.add_route("/", overview)
    app.add_route("/status", overview)
    app.add_route("/status/style.css", p.Stylesheet())
    app.add_route("/status/servers/{key}", p.Guest(pages, "server"))
    app.add_route("/status/domains/{key}", p.Guest(pages, "domain"))
    app.add_route("/login", p.Login(pages))
    app.add_route("/logout", p.Logout(pages))
