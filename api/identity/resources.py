"""Keystone v3 request handling."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import DOMAIN_ID, DOMAIN_NAME, ApiConfig, Project, User, stable_id
from api.errors import BadRequest, Forbidden, NotFound, Unauthorized
from api.http import given, isotime, read_json, send
from api.identity.app_credentials import AppCredential, AppCredentials
from api.identity.catalog import catalog
from api.identity.login import PasswordCheck
from api.identity.store import IdentityStore
from api.identity.tokens import Token, TokenSigner
from api.identity.verifier import TokenVerifier

VERSION = "v3.14"
AUTH_FAILED = "The request you have made requires authentication."
DOMAIN = {"id": DOMAIN_ID, "name": DOMAIN_NAME}


def version_document(base_url: str) -> dict[str, Any]:
    """The v3 entry of Keystone's version documents."""
    return {"id": VERSION, "status": "stable", "updated": "2024-01-01T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base_url}/identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


def project_view(project: Project, base_url: str) -> dict[str, Any]:
    """A project as Keystone shows it."""
    return {"id": project.id, "name": project.name, "description": project.description,
            "domain_id": project.domain_id, "enabled": project.enabled, "is_domain": False,
            "parent_id": project.domain_id, "tags": [],
            "links": {"self": f"{base_url}/identity/v3/projects/{project.id}"}}


def user_view(user: User, base_url: str) -> dict[str, Any]:
    """A user as Keystone shows it (never its hash)."""
    view = {"id": user.id, "name": user.name, "domain_id": DOMAIN_ID, "enabled": user.enabled, "email": user.email,
            "description": user.description, "password_expires_at": None, "options": {},
            "links": {"self": f"{base_url}/identity/v3/users/{user.id}"}}
    if user.default_project_id:
        view["default_project_id"] = user.default_project_id
    return view


def _in_default_domain(data: dict[str, Any]) -> None:
    domain = data.get("domain")
    if domain is None:
        return
    if domain.get("id") not in (None, DOMAIN_ID) or str(domain.get("name", DOMAIN_NAME)).lower() != "default":
        raise Unauthorized(AUTH_FAILED)


def _method(identity: dict[str, Any], method: str) -> dict[str, Any]:
    """The identity's member for `method` (the schema cannot tie it to the methods list)."""
    if method not in identity:
        raise BadRequest(f"auth.identity.{method}", f"is required for the {method} method")
    return identity[method]


def _subject(req: falcon.Request) -> str:
    subject = req.get_header("X-Subject-Token")
    if not subject:
        raise BadRequest("X-Subject-Token", "the header must name the token to validate or revoke")
    return subject


class Tokens:
    """POST /identity/v3/auth/tokens (password auth with project scope, or an application credential),
    GET/HEAD (validation), DELETE (revocation)."""

    public = True  # POST carries no token; the other methods check both tokens themselves

    def __init__(self, config: ApiConfig, store: IdentityStore, signer: TokenSigner, verifier: TokenVerifier,
                 passwords: PasswordCheck):
        self.config = config
        self.store = store
        self.app_credentials = verifier.app_credentials
        self.signer = signer
        self.verifier = verifier
        self.passwords = passwords

    def _user(self, identity: dict[str, Any], address: str) -> User:
        spec = _method(identity, "password")["user"]
        secret = spec["password"]
        _in_default_domain(spec)
        if "id" in spec:
            given = spec["id"]
            user = next((u for u in self.store.users() if u.id == given), None)
        else:
            given = spec["name"]
            user = self.store.user_by_name(given)
        found = self.passwords.check(user, given, secret, address)
        if found is None or not found.enabled:  # disabled: after the hash, so timing tells nothing
            raise Unauthorized(AUTH_FAILED)
        return found

    def _app_credential(self, identity: dict[str, Any], address: str) -> tuple[AppCredential, User, Project]:
        """The application credential the request names with its secret, its user and project; 401 otherwise."""
        spec = _method(identity, "application_credential")
        secret = spec["secret"]
        if "id" in spec:
            given = spec["id"]
            credential = self.app_credentials.get(given)
        else:
            given = spec["name"]
            owner = spec["user"]
            _in_default_domain(owner)
            user = self.store.user_by_id(owner["id"]) if "id" in owner else self.store.user_by_name(owner["name"])
            credential = next(iter(self.app_credentials.of_user(user.id, given)), None) if user else None
        subject = credential.id if credential is not None else given
        if not self.passwords.secret_matches(subject, credential.secret_hash if credential else None, secret, address):
            raise Unauthorized(AUTH_FAILED)
        assert credential is not None  # a match needs a hash
        user = self.store.user_by_id(credential.user_id)
        project = self.store.project_by_id(credential.project_id)
        if user is None or not user.enabled or project is None or not project.enabled or credential.expired():
            raise Unauthorized(AUTH_FAILED)
        return credential, user, project

    def _project(self, user: User, scope: Any) -> Project:
        if scope is None:
            # Unscoped request: the user's default project if it has a role there (as Keystone), else the
            # first one it has a role on.
            projects = [p for p in self.store.projects_of(user) if p.enabled]
            if not projects:
                raise Unauthorized(f"user {user.name} has no role on any project")
            return next((p for p in projects if p.id == user.default_project_id), projects[0])
        spec = scope["project"]
        _in_default_domain(spec)
        project = self.store.project_by_id(spec["id"]) if "id" in spec else self.store.project_by_name(spec["name"])
        if project is None or project.name not in user.roles or not project.enabled:
            raise Unauthorized(AUTH_FAILED)
        return project

    def _body(self, token: Token, base_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if token.app_cred_id:
            credential = self.app_credentials.get(token.app_cred_id)
            body["application_credential"] = {"id": token.app_cred_id, "name": credential.name if credential else "",
                                              "restricted": not credential.unrestricted if credential else True}
        return {"token": {
            **body, "methods": ["application_credential" if token.app_cred_id else "password"],
            "expires_at": isotime(token.expires_at, micro=True),
            "issued_at": isotime(token.issued_at, micro=True), "audit_ids": [token.audit_id],
            "user": {"id": token.user_id, "name": token.user_name, "domain": DOMAIN, "password_expires_at": None},
            "project": {"id": token.project_id, "name": token.project_name, "domain": DOMAIN},
            "roles": [{"id": stable_id("role", r), "name": r} for r in token.roles],
            "is_domain": False,
            "catalog": catalog(base_url, self.config.region),
        }}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The body's shape is api/openapi.yaml's (checked by the hook); what needs the users is here.
        auth = read_json(req, self.config.max_json_body, "auth")
        identity = auth["identity"]
        if "application_credential" in identity["methods"]:
            credential, user, project = self._app_credential(identity, req.remote_addr)
            # The credential's roles that its user still has there (none left: Keystone refuses it too).
            roles = tuple(r for r in credential.roles if r in user.roles.get(project.name, ()))
            if not roles:
                raise Unauthorized(AUTH_FAILED)
            text, token = self.signer.issue(user.id, user.name, project.id, project.name, roles,
                                            self.signer.stamp(user), credential.id, credential.expires_at)
        else:  # the only other method the schema accepts
            user = self._user(identity, req.remote_addr)
            project = self._project(user, auth.get("scope"))
            text, token = self.signer.issue(user.id, user.name, project.id, project.name, user.roles[project.name],
                                            self.signer.stamp(user))
        resp.set_header("X-Subject-Token", text)
        send(resp, self._body(token, req.prefix), 201)

    def _subject_token(self, req: falcon.Request) -> tuple[Token, str, Token]:
        """(the caller's token, the subject token's text, its claims); 404 if the subject is not valid now."""
        caller = self.verifier.verify(req.get_header("X-Auth-Token"))
        subject = _subject(req)
        try:
            return caller, subject, self.verifier.verify(subject)
        except Unauthorized as exc:
            raise NotFound(f"the subject token is not valid: {exc.message}") from None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _, subject, token = self._subject_token(req)
        resp.set_header("X-Subject-Token", subject)
        send(resp, self._body(token, req.prefix))

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
        resp.text = None

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        caller, subject, token = self._subject_token(req)
        if token.user_id != caller.user_id:
            require_admin(caller, "revoking another user's token")
        self.verifier.revoke(subject, token)
        resp.status = falcon.HTTP_204


class Projects:
    """GET /identity/v3/projects (admin), POST (admin)."""

    def __init__(self, config: ApiConfig, store: IdentityStore):
        self.config = config
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing every project")
        name = req.get_param("name")
        projects = [p for p in self.store.projects() if name is None or p.name == name]
        send(resp, {"projects": [project_view(p, req.prefix) for p in projects],
                    "links": {"self": f"{req.prefix}/identity/v3/projects", "next": None, "previous": None}})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "creating a project")
        body = read_json(req, self.config.max_json_body, "project")
        if body.get("domain_id") not in (None, DOMAIN_ID):
            raise BadRequest("project.domain_id", f"only the {DOMAIN_ID!r} domain exists")
        project = self.store.create_project(body["name"], given(body, "description", ""))
        send(resp, {"project": project_view(project, req.prefix)}, 201)


class ProjectItem:
    """GET /identity/v3/projects/{id}: an admin, or a member of it; PATCH and DELETE (admin)."""

    def __init__(self, store: IdentityStore, max_json_body: int):
        self.store = store
        self.max_json_body = max_json_body

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        token = token_of(req)
        if not token.is_admin and project_id != token.project_id:
            user = self.store.user(token.user_id)
            if project_id not in {p.id for p in self.store.projects_of(user)}:
                raise Forbidden("only an admin can see a project it is not a member of")
        send(resp, {"project": project_view(self.store.project(project_id), req.prefix)})

    def on_patch(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        require_admin(token_of(req), "changing a project")
        body = read_json(req, self.max_json_body, "project")
        if given(body, "domain_id", DOMAIN_ID) != DOMAIN_ID:
            raise BadRequest("project.domain_id", "a project cannot move to another domain")
        enabled = body.get("enabled")
        token = token_of(req)
        if enabled is False and project_id == token.project_id:
            raise Forbidden("a token cannot disable the project it is scoped to")
        project = self.store.update_project(project_id, body.get("name"), body.get("description"), enabled)
        send(resp, {"project": project_view(project, req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        token = token_of(req)
        require_admin(token, "deleting a project")
        if project_id == token.project_id:
            raise Forbidden("a token cannot delete the project it is scoped to")
        self.store.delete_project(project_id)
        resp.status = falcon.HTTP_204


class UserProjects:
    """GET /identity/v3/users/{id}/projects and /auth/projects: the caller's own projects."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str | None = None) -> None:
        token = token_of(req)
        if user_id is not None and user_id != token.user_id:
            require_admin(token, "listing another user's projects")
        user = self.store.user(user_id or token.user_id)
        send(resp, {"projects": [project_view(p, req.prefix) for p in self.store.projects_of(user)],
                    "links": {"self": req.url, "next": None, "previous": None}})


class Users:
    """GET /identity/v3/users (admin), POST (admin)."""

    def __init__(self, store: IdentityStore, max_json_body: int):
        self.store = store
        self.max_json_body = max_json_body

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "creating a user")
        user = self.store.create_user(read_json(req, self.max_json_body, "user"))
        send(resp, {"user": user_view(user, req.prefix)}, 201)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing users")
        name = req.get_param("name")
        users = [u for u in self.store.users() if name is None or u.name == name]
        send(resp, {"users": [user_view(u, req.prefix) for u in users],
                    "links": {"self": req.url, "next": None, "previous": None}})


class UserItem:
    """GET /identity/v3/users/{id}: oneself, or anyone for an admin; PATCH and DELETE (admin)."""

    def __init__(self, store: IdentityStore, max_json_body: int, app_credentials: AppCredentials):
        self.store = store
        self.max_json_body = max_json_body
        self.app_credentials = app_credentials

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        require_admin(token_of(req), "changing a user")
        user = self.store.update_user(user_id, read_json(req, self.max_json_body, "user"))
        send(resp, {"user": user_view(user, req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        token = token_of(req)
        require_admin(token, "deleting a user")
        if user_id == token.user_id:
            raise Forbidden("a user cannot delete itself")
        self.store.delete_user(user_id)
        self.app_credentials.forget_user(user_id)
        resp.status = falcon.HTTP_204

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        token = token_of(req)
        if user_id != token.user_id:
            require_admin(token, "showing another user")
        send(resp, {"user": user_view(self.store.user(user_id), req.prefix)})


class UserPassword:
    """POST /identity/v3/users/{id}/password: a user changes its own password, proving the old one (no token
    needed, as Keystone; the check goes through the login throttle). The user's earlier tokens are refused."""

    public = True

    def __init__(self, store: IdentityStore, passwords: PasswordCheck, max_json_body: int):
        self.store = store
        self.passwords = passwords
        self.max_json_body = max_json_body

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        body = read_json(req, self.max_json_body, "user")
        original, new = body["original_password"], body["password"]
        found = self.passwords.check(self.store.user_by_id(user_id), user_id, original, req.remote_addr)
        if found is None or not found.enabled:
            raise Unauthorized(AUTH_FAILED)
        self.store.update_user(user_id, {"password": new})
        resp.status = falcon.HTTP_204
