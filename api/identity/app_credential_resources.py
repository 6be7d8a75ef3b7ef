"""/identity/v3/users/{user_id}/application_credentials: a user manages its own (an admin may list, show and
delete anyone's, as Keystone's default policy allows; only the user itself creates)."""

from __future__ import annotations

from typing import Any

import falcon

from api.auth import token_of
from api.config import stable_id
from api.errors import Forbidden
from api.http import given, read_json, send
from api.identity import app_credentials as ac
from api.identity.access_rules import parse_rules
from api.identity.passwords import hash_password
from api.identity.store import IdentityStore
from api.identity.tokens import Token


def credential_view(credential: ac.AppCredential, base_url: str) -> dict[str, Any]:
    """A credential as Keystone shows it (never its secret or hash)."""
    return {"id": credential.id, "name": credential.name, "description": credential.description or None,
            "user_id": credential.user_id, "project_id": credential.project_id,
            "roles": [{"id": stable_id("role", r), "name": r, "domain_id": None} for r in credential.roles],
            "expires_at": ac.format_expiry(credential.expires_at), "unrestricted": credential.unrestricted,
            "access_rules": [rule.view() for rule in credential.access_rules],
            "links": {"self": f"{base_url}/identity/v3/users/{credential.user_id}/application_credentials/"
                              f"{credential.id}"}}


def _owner_or_admin(token: Token, user_id: str, what: str) -> None:
    if user_id != token.user_id and not token.is_admin:
        raise Forbidden(f"{what} another user's application credentials requires the admin role")


def _may_manage(token: Token, credentials: ac.AppCredentials) -> None:
    """A token from a restricted application credential cannot create or delete credentials (as Keystone)."""
    if token.app_cred_id:
        credential = credentials.get(token.app_cred_id)
        if credential is None or not credential.unrestricted:
            raise Forbidden("a token from a restricted application credential cannot manage application credentials")


def _roles(body: dict[str, Any], token: Token) -> tuple[str, ...]:
    """The requested roles (by name or id), each one the token has; all the token's roles if none are named."""
    requested = body.get("roles")
    if not requested:  # Keystone: none named means all of the token's
        return token.roles
    chosen = []
    for index, role in enumerate(requested):  # each {"id"} or {"name"} (api/openapi.yaml)
        where = f"application_credential.roles[{index}]"
        match = next((r for r in token.roles if r == role.get("name") or stable_id("role", r) == role.get("id")), None)
        if match is None:
            raise Forbidden(f"{where}: the token does not carry this role on its project")
        chosen.append(match)
    return tuple(dict.fromkeys(chosen))


class AppCredentialList:
    """GET (name filter) and POST /identity/v3/users/{user_id}/application_credentials."""

    def __init__(self, store: IdentityStore, credentials: ac.AppCredentials, max_json_body: int):
        self.store = store
        self.credentials = credentials
        self.max_json_body = max_json_body

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _owner_or_admin(token_of(req), user_id, "listing")
        self.store.user(user_id)
        found = self.credentials.of_user(user_id, req.get_param("name"))
        send(resp, {"application_credentials": [credential_view(c, req.prefix) for c in found],
                    "links": {"self": req.url, "next": None, "previous": None}})

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        token = token_of(req)
        body = read_json(req, self.max_json_body, "application_credential")
        if user_id != token.user_id:
            raise Forbidden("only the user itself can create its application credentials")
        _may_manage(token, self.credentials)
        # The body's shape is api/openapi.yaml's (checked by the hook); roles, rules and expiry need more.
        name, description, unrestricted = body["name"], given(body, "description", ""), body.get("unrestricted", False)
        secret = given(body, "secret", None) or ac.new_secret()
        rules = self.credentials.rules.ensure(user_id, parse_rules(body["access_rules"])) \
            if body.get("access_rules") is not None else ()
        credential = self.credentials.create(ac.AppCredential(
            id=ac.new_id(), user_id=user_id, project_id=token.project_id, name=name, description=description,
            secret_hash=hash_password(secret), roles=_roles(body, token),
            expires_at=ac.parse_expiry(body.get("expires_at")), unrestricted=unrestricted, access_rules=rules))
        send(resp, {"application_credential": {**credential_view(credential, req.prefix), "secret": secret}}, 201)


class AppCredentialItem:
    """GET and DELETE /identity/v3/users/{user_id}/application_credentials/{id}."""

    def __init__(self, credentials: ac.AppCredentials):
        self.credentials = credentials

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str, credential_id: str) -> None:
        _owner_or_admin(token_of(req), user_id, "showing")
        send(resp, {"application_credential": credential_view(self.credentials.of(user_id, credential_id),
                                                               req.prefix)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str, credential_id: str) -> None:
        token = token_of(req)
        _owner_or_admin(token, user_id, "deleting")
        _may_manage(token, self.credentials)
        self.credentials.delete(user_id, credential_id)
        resp.status = falcon.HTTP_204


class AccessRuleList:
    """GET /identity/v3/users/{user_id}/access_rules: the user's rules (the user itself, or an admin)."""

    def __init__(self, store: IdentityStore, credentials: ac.AppCredentials):
        self.store = store
        self.credentials = credentials

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        _owner_or_admin(token_of(req), user_id, "listing")
        self.store.user(user_id)
        send(resp, {"access_rules": [r.view() for r in self.credentials.rules.of_user(user_id)],
                    "links": {"self": req.url, "next": None, "previous": None}})


class AccessRuleItem:
    """GET and DELETE /identity/v3/users/{user_id}/access_rules/{id} (403 while a credential uses it)."""

    def __init__(self, credentials: ac.AppCredentials):
        self.credentials = credentials

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: str, access_rule_id: str) -> None:
        _owner_or_admin(token_of(req), user_id, "showing")
        send(resp, {"access_rule": self.credentials.rules.get(user_id, access_rule_id).view()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str, access_rule_id: str) -> None:
        token = token_of(req)
        _owner_or_admin(token, user_id, "deleting")
        _may_manage(token, self.credentials)
        self.credentials.delete_rule(user_id, access_rule_id)
        resp.status = falcon.HTTP_204
