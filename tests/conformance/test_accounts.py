"""The pre-provisioned accounts Tempest draws its users from (accounts.yaml)."""

from __future__ import annotations

from collections import Counter

import yaml

from conformance.tempest_conf import accounts, accounts_yaml


def test_each_project_persona_matches_exactly_one_account() -> None:
    # Tempest asks a project for its member, reader and manager by the role accounts.yaml lists; two accounts
    # matching one request let it hand the manager out as the member, and the manager request then fails.
    listed = yaml.safe_load(accounts_yaml(accounts()))
    personas = Counter((entry["project_name"], role) for entry in listed if "types" not in entry
                       for role in entry["roles"])
    projects = {entry["project_name"] for entry in listed if entry["username"].startswith("tempest-member-")}
    assert projects
    for project in projects:
        assert [personas[(project, role)] for role in ("member", "reader", "manager")] == [1, 1, 1], project


def test_keystone_still_gives_every_role_the_persona_implies() -> None:
    by_name = {user.username: user for user in accounts()}
    assert set(by_name["tempest-manager-1"].roles) == {"manager", "member", "reader"}
    assert set(by_name["tempest-member-1"].roles) == {"member", "reader"}
    admin = next(entry for entry in yaml.safe_load(accounts_yaml(accounts())) if "types" in entry)
    assert "admin" in admin["roles"] and "member" in admin["roles"]


def test_admin_requests_cannot_starve_a_service_user_request() -> None:
    """Tempest hands a plain `admin` request any account with the admin role, in a random order: with two
    workers, one class holding two admin accounts (admin + a service user) and the other asking for both too,
    every order must still find an account with admin and service free."""
    listed = yaml.safe_load(accounts_yaml(accounts()))
    admins = [entry for entry in listed if "admin" in entry["roles"] or "admin" in entry.get("types", [])]
    service_admins = [entry for entry in admins if "service" in entry["roles"]]
    held_by_other_worker, plain_admin = 2, 1
    assert len(service_admins) == len(admins) >= held_by_other_worker + plain_admin + 1
