"""Keystone's domains (the default one), roles, role assignments and the catalog outside a token."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import require_admin, token_of
from api.config import DOMAIN_ID, DOMAIN_NAME, ApiConfig, stable_id
from api.errors import Forbidden, NotFound
from api.http import send
from api.identity.catalog import catalog
from api.identity.store import IdentityStore


def domain_view(base_url: str) -> dict[str, Any]:
    """The one domain, as Keystone shows it."""
    return {"id": DOMAIN_ID, "name": DOMAIN_NAME, "description": "The default domain", "enabled": True,
            "tags": [], "options": {}, "links": {"self": f"{base_url}/identity/v3/domains/{DOMAIN_ID}"}}


def role_view(name: str, base_url: str) -> dict[str, Any]:
    """A role, as Keystone shows it."""
    role_id = stable_id("role", name)
    return {"id": role_id, "name": name, "domain_id": None, "description": None, "options": {},
            "links": {"self": f"{base_url}/identity/v3/roles/{role_id}"}}


def _list_links(req: falcon.Request) -> dict[str, Any]:
    return {"self": req.url, "next": None, "previous": None}


class Domains:
    """GET /identity/v3/domains (admin, as Keystone's policy: `name` and `enabled` filters)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing domains")
        name, enabled = req.get_param("name"), req.get_param("enabled")
        shown = (name is None or name == DOMAIN_NAME) and enabled in (None, "true", "True", "1")
        send(resp, {"domains": [domain_view(req.prefix)] if shown else [], "links": _list_links(req)})


class AuthDomains:
    """GET /identity/v3/auth/domains: the domains the caller has a role on; roles here are on projects only."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"domains": [], "links": _list_links(req)})


class DomainItem:
    """GET /identity/v3/domains/{id}: only `default` exists, every project's domain (anyone may see it)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, domain_id: str) -> None:
        if domain_id != DOMAIN_ID:
            raise NotFound(f"could not find domain: {domain_id[:64]}")
        send(resp, {"domain": domain_view(req.prefix)})


class Roles:
    """GET /identity/v3/roles (admin, as Keystone's policy; `name` filter)."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(token_of(req), "listing roles")
        name = req.get_param("name")
        roles = [r for r in self.store.roles() if name is None or r == name]
        send(resp, {"roles": [role_view(r, req.prefix) for r in roles], "links": _list_links(req)})


class RoleItem:
    """GET /identity/v3/roles/{id} (admin)."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, role_id: str) -> None:
        require_admin(token_of(req), "showing a role")
        send(resp, {"role": role_view(self.store.role_name(role_id), req.prefix)})


class ProjectUserRoles:
    """GET /identity/v3/projects/{p}/users/{u}/roles: the user's roles there (admin, or the user itself)."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str, user_id: str) -> None:
        token = token_of(req)
        if user_id != token.user_id:
            require_admin(token, "listing another user's roles")
        project, user = self.store.project(project_id), self.store.user(user_id)
        send(resp, {"roles": [role_view(r, req.prefix) for r in user.roles.get(project.name, ())],
                    "links": _list_links(req)})


class ProjectUserRole:
    """PUT, HEAD/GET (check) and DELETE /identity/v3/projects/{p}/users/{u}/roles/{r} (admin)."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str, user_id: str,
               role_id: str) -> None:
        require_admin(token_of(req), "granting a role")
        self.store.grant(project_id, user_id, role_id)
        resp.status = falcon.HTTP_204

    def on_head(self, req: falcon.Request, resp: falcon.Response, project_id: str, user_id: str,
                role_id: str) -> None:
        require_admin(token_of(req), "checking a role grant")
        project, user, role = (self.store.project(project_id), self.store.user(user_id),
                               self.store.role_name(role_id))
        if role not in user.roles.get(project.name, ()):
            raise NotFound("the user has no such role on the project")
        resp.status = falcon.HTTP_204

    on_get = on_head

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str, user_id: str,
                  role_id: str) -> None:
        require_admin(token_of(req), "revoking a role")
        self.store.revoke(project_id, user_id, role_id)
        resp.status = falcon.HTTP_204


class RoleAssignments:
    """GET /identity/v3/role_assignments: filters user.id, scope.project.id, role.id; include_names.

    An admin sees every grant; anyone else only its own (`user.id` must be the caller's), as Keystone's
    policy allows a user to list its own assignments."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = token_of(req)
        user_id, project_id = req.get_param("user.id"), req.get_param("scope.project.id")
        role_id = req.get_param("role.id")
        if not token.is_admin and user_id != token.user_id:
            raise Forbidden("listing role assignments requires the admin role (or user.id set to your own id)")
        if req.get_param("group.id") or req.get_param("scope.domain.id") or req.get_param("scope.system"):
            send(resp, {"role_assignments": [], "links": _list_links(req)})  # no groups, domain or system grants
            return
        names = req.get_param_as_bool("include_names") or False
        found = []
        for user, project, role in self.store.assignments():
            rid = stable_id("role", role)
            if (user_id not in (None, user.id) or project_id not in (None, project.id)
                    or role_id not in (None, rid)):
                continue
            entry = {"role": {"id": rid}, "user": {"id": user.id}, "scope": {"project": {"id": project.id}},
                     "links": {"assignment": f"{req.prefix}/identity/v3/projects/{project.id}/users/{user.id}"
                                             f"/roles/{rid}"}}
            if names:
                domain = {"id": DOMAIN_ID, "name": DOMAIN_NAME}
                entry["role"]["name"] = role
                entry["user"].update(name=user.name, domain=domain)
                entry["scope"]["project"].update(name=project.name, domain=domain)
            found.append(entry)
        send(resp, {"role_assignments": found, "links": _list_links(req)})


class AuthCatalog:
    """GET /identity/v3/auth/catalog: the catalog a token carries, for any token."""

    def __init__(self, config: ApiConfig):
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"catalog": catalog(req.prefix, self.config.region),
                    "links": {"self": req.url, "next": None, "previous": None}})
