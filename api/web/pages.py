"""The status page's falcon resources: login, logout, the list, one guest's page, the stylesheet.

Each is `public` to the token middleware (a browser sends no X-Auth-Token) and
checks the session cookie itself; every response carries guard.HEADERS.
"""

from __future__ import annotations

import secrets
from typing import Any

import falcon
import jinja2

from api.identity.login import PasswordCheck
from api.identity.store import IdentityStore
from api.identity.throttle import Throttled
from api.web import guard
from api.web.guard import LOGIN_COOKIE, SESSION_COOKIE, Refused
from api.web.sessions import Session, SessionStore, WebSettings
from api.web.views import StatusViews, Viewer
from provisioner.template_sources import TEMPLATES

WEB_TEMPLATES = TEMPLATES / "web"
LOGIN_TTL = 3600  # seconds the login form's CSRF cookie lives
MAX_NAME = 255
MAX_PASSWORD = 4096
BAD_LOGIN = "wrong user name or password"


def environment() -> jinja2.Environment:
    """The pages' templates: autoescaped (console and log text from guests is hostile), undefined names fail."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class Pages:
    """What every resource shares: templates, sessions, the identity store, the views."""

    def __init__(self, settings: WebSettings, sessions: SessionStore, identity: IdentityStore,
                 passwords: PasswordCheck, views: StatusViews):
        self.settings = settings
        self.sessions = sessions
        self.identity = identity
        self.passwords = passwords
        self.views = views
        self.templates = environment()

    def render(self, resp: falcon.Response, template: str, status: int = 200, **values: Any) -> None:
        """An HTML page with the security headers."""
        guard.secure_headers(resp)
        resp.status = status
        resp.content_type = "text/html; charset=utf-8"
        resp.text = self.templates.get_template(template).render({"refresh": 0, "viewer": None, "csrf": "", **values})

    def error(self, resp: falcon.Response, refused: Refused, viewer: Viewer | None = None, csrf: str = "") -> None:
        """An error page."""
        self.render(resp, "error.html.j2", refused.status, message=refused.message, viewer=viewer, csrf=csrf)

    def redirect(self, resp: falcon.Response, location: str) -> None:
        """303 to a path of this site."""
        guard.secure_headers(resp)
        resp.status = falcon.HTTP_303
        resp.location = location

    def session(self, req: falcon.Request) -> Session | None:
        """The request's live session, or None."""
        return self.sessions.find(guard.cookie(req, SESSION_COOKIE))

    def viewer(self, session: Session) -> Viewer:
        """Who is looking, with its projects as the configuration says now."""
        return Viewer(session.user, tuple(self.identity.projects_of(session.user)))

    def project_names(self) -> dict[str, str]:
        """Project id -> name, for the tables."""
        return {p.id: p.name for p in self.identity.projects()}


class Login:
    """GET /login: the form; POST /login: check the password (Keystone's check, same throttle), start a session."""

    public = True

    def __init__(self, pages: Pages):
        self.pages = pages

    def _form(self, req: falcon.Request, resp: falcon.Response, status: int = 200, message: str = "",
              name: str = "") -> None:
        token = secrets.token_urlsafe(32)
        guard.set_cookie(req, resp, LOGIN_COOKIE, token, LOGIN_TTL, "/login")
        self.pages.render(resp, "login.html.j2", status, login_csrf=token, message=message, name=name[:MAX_NAME])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.pages.session(req) is not None:
            self.pages.redirect(resp, "/status")
            return
        self._form(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            guard.check_origin(req)
            form = guard.read_form(req)
            guard.check_token(guard.cookie(req, LOGIN_COOKIE), form.get("csrf"))
        except Refused as refused:
            self.pages.error(resp, refused)
            return
        name, password = form.get("username", ""), form.get("password", "")
        if not name or not password or len(name) > MAX_NAME or len(password) > MAX_PASSWORD:
            self._form(req, resp, 400, f"give a user name (at most {MAX_NAME} characters) and its password")
            return
        user = self.pages.identity.user_by_name(name)
        try:
            found = self.pages.passwords.check(user, name, password, req.remote_addr)
        except Throttled as exc:
            resp.set_header("Retry-After", str(exc.retry_after))
            self._form(req, resp, 429, exc.message, name)
            return
        if found is None or not getattr(found, "enabled", True):
            self._form(req, resp, 401, BAD_LOGIN, name)
            return
        session_id = self.pages.sessions.create(found)
        guard.set_cookie(req, resp, SESSION_COOKIE, session_id, self.pages.settings.ttl, "/")
        guard.clear_cookie(resp, LOGIN_COOKIE, "/login")
        self.pages.redirect(resp, "/status")


class Logout:
    """POST /logout: end the session (its CSRF token and the Origin checked first)."""

    public = True

    def __init__(self, pages: Pages):
        self.pages = pages

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = self.pages.session(req)
        try:
            guard.check_origin(req)
            form = guard.read_form(req)
            if session is not None:  # an ended session has nothing left to end: off to the login form
                guard.check_token(session.csrf, form.get("csrf"))
        except Refused as refused:
            self.pages.error(resp, refused)
            return
        self.pages.sessions.end(guard.cookie(req, SESSION_COOKIE) or "")
        guard.clear_cookie(resp, SESSION_COOKIE, "/")
        self.pages.redirect(resp, "/login")


class Overview:
    """GET / and GET /status: every guest, image, network and volume the user may see."""

    public = True

    def __init__(self, pages: Pages):
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = self.pages.session(req)
        if session is None:
            self.pages.redirect(resp, "/login")
            return
        viewer = self.pages.viewer(session)
        overview = self.pages.views.overview(viewer, self.pages.project_names())
        self.pages.render(resp, "status.html.j2", viewer=viewer, csrf=session.csrf,
                          refresh=self.pages.settings.refresh, page=overview)


class Guest:
    """GET /status/servers/{id} and /status/domains/{name}: one guest; 404 for one the user may not see."""

    public = True

    def __init__(self, pages: Pages, kind: str):
        self.pages = pages
        self.kind = kind

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        session = self.pages.session(req)
        if session is None:
            self.pages.redirect(resp, "/login")
            return
        viewer = self.pages.viewer(session)
        names = self.pages.project_names()
        if self.kind == "server":
            page = self.pages.views.server_page(viewer, key, names)
        else:
            page = self.pages.views.domain_page(viewer, key, names)
        if page is None:
            self.pages.error(resp, Refused(404, f"no such {self.kind}, or not one of your projects'"), viewer,
                             session.csrf)
            return
        self.pages.render(resp, "guest.html.j2", viewer=viewer, csrf=session.csrf,
                          refresh=self.pages.settings.refresh, page=page)


class Stylesheet:
    """GET /status/style.css: the pages' one stylesheet (the CSP allows styles from this site only)."""

    public = True

    def __init__(self) -> None:
        self.text = (WEB_TEMPLATES / "style.css").read_text()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        guard.secure_headers(resp)
        resp.set_header("Cache-Control", "max-age=300")
        resp.content_type = "text/css; charset=utf-8"
        resp.text = self.text
