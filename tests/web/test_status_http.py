"""The web status page over plain HTTP on a real server: login, refused logins and forms, what a member may see,
escaping of guest output, security headers, session expiry and logout (tests/web/test_status_browser.py drives
the same pages in Chromium)."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from api.accounts import delete_user, set_user, update_user
from api.config import config_path, load_config
from api.web.guard import HEADERS, SESSION_COOKIE
from api.web.sessions import TABLE, WebSettings
from provisioner.errors import ProvisionError

from apitest import PASSWORD, Live
from .webtest import CLI_DOMAIN, Site, csrf_of, login


def _age(live: Live, column: str, seconds: float) -> None:
    """Move every session's `column` (created, seen) back in time, as if that much time had passed."""
    with sqlite3.connect(live.layout.state_db) as conn:
        conn.execute(f"UPDATE {TABLE} SET {column} = {column} - ?", (seconds,))


def test_login_shows_the_list_and_a_servers_page(site: Site) -> None:
    session, resp = login(site.live, "alice")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/status")
    cookies = resp.raw.headers.getlist("Set-Cookie")
    cookie = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/;" in cookie + ";"
    assert "Secure" not in cookie, "plain HTTP: a Secure cookie would never be sent back"
    for path in ("/", "/status"):
        page = session.get(site.live.url + path, timeout=30)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert site.server_name in page.text and site.server_id in page.text and "ACTIVE" in page.text
        assert site.image_name in page.text and "default" in page.text, "images and networks listed"
        assert '<meta http-equiv="refresh"' in page.text
    shown = session.get(f"{site.live.url}/status/servers/{site.server_id}", timeout=30)
    assert shown.status_code == 200
    assert site.domain in shown.text and "applied" in shown.text and "took" in shown.text
    assert session.get(f"{site.live.url}/status/domains/{site.domain}", timeout=30).status_code == 200


def test_every_page_carries_the_security_headers(site: Site) -> None:
    session, _ = login(site.live, "alice")
    for path in ("/login", "/status", f"/status/servers/{site.server_id}", "/status/servers/nope"):
        resp = session.get(site.live.url + path, timeout=30, allow_redirects=False)
        for name, value in HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)
    anonymous = requests.get(site.live.url + "/", timeout=30, allow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["Location"].endswith("/login")
    assert anonymous.headers["X-Frame-Options"] == "DENY"
    assert "script-src" not in HEADERS["Content-Security-Policy"] and "default-src 'none'" in \
        HEADERS["Content-Security-Policy"], "no script of any kind may run"


def test_the_openstack_routes_are_unchanged(site: Site) -> None:
    assert requests.get(f"{site.live.url}/identity", timeout=30).status_code == 300
    assert requests.get(f"{site.live.url}/compute/v2.1", timeout=30).json()["version"]["id"] == "v2.1"
    listed = requests.get(f"{site.live.url}/compute/v2.1/servers", timeout=30)
    assert listed.status_code == 401, "a session cookie is not a token"


def test_a_wrong_password_is_refused_and_counted_by_keystones_throttle(site: Site) -> None:
    session, resp = login(site.live, "carol", "wrong-password")
    assert resp.status_code == 401 and "wrong user name or password" in resp.text
    assert SESSION_COOKIE not in session.cookies
    assert session.get(f"{site.live.url}/status", timeout=30, allow_redirects=False).status_code == 303
    unknown_session, unknown = login(site.live, "nobody-at-all", "wrong-password")
    assert unknown.status_code == 401 and "wrong user name or password" in unknown.text
    for _ in range(4):  # five failures in all: carol is locked (auth_failures_per_user)
        assert login(site.live, "carol", "wrong-password")[1].status_code == 401
    _, locked = login(site.live, "carol")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0, "the right password is refused too"
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "carol", "domain": {"name": "Default"}, "password": PASSWORD}}}}}
    keystone = requests.post(f"{site.live.url}/identity/v3/auth/tokens", json=body, timeout=30)
    assert keystone.status_code == 429, "the page's failures count against Keystone's logins too"


def test_a_form_without_its_csrf_token_or_from_another_origin_is_refused(site: Site) -> None:
    url = site.live.url
    session = requests.Session()
    token = csrf_of(session.get(f"{url}/login", timeout=30).text)
    fields = {"username": "alice", "password": PASSWORD}
    for data, headers, why in (
            (fields, {"Origin": url}, "missing token"),
            ({**fields, "csrf": "x" * len(token)}, {"Origin": url}, "wrong token"),
            ({**fields, "csrf": token}, {"Origin": "http://evil.example"}, "another origin"),
            ({**fields, "csrf": token}, {"Origin": "null"}, "an opaque origin"),
            ({**fields, "csrf": token}, {}, "neither Origin nor Referer"),
            ({**fields, "csrf": token}, {"Referer": "http://evil.example/status"}, "another site's Referer")):
        resp = session.post(f"{url}/login", data=data, headers=headers, timeout=30, allow_redirects=False)
        assert resp.status_code == 403, why
        assert SESSION_COOKIE not in session.cookies, why
    bare = requests.post(f"{url}/login", data={**fields, "csrf": token}, headers={"Origin": url}, timeout=30)
    assert bare.status_code == 403, "the token must match the login cookie, not just be present"
    referer = session.post(f"{url}/login", data={**fields, "csrf": token}, headers={"Referer": f"{url}/login"},
                           timeout=60, allow_redirects=False)
    assert referer.status_code == 303, "a same-site Referer stands in for a missing Origin"

    alice, _ = login(site.live, "alice")
    for data, headers, why in (({"other": "x"}, {"Origin": url}, "missing token"),
                               ({"csrf": "wrong"}, {"Origin": url}, "wrong token"),
                               ({"csrf": csrf_of(alice.get(f"{url}/status", timeout=30).text)},
                                {"Origin": "http://evil.example"}, "another origin")):
        resp = alice.post(f"{url}/logout", data=data, headers=headers, timeout=30, allow_redirects=False)
        assert resp.status_code == 403, why
    assert alice.get(f"{url}/status", timeout=30, allow_redirects=False).status_code == 200, "still logged in"
    oversized = alice.post(f"{url}/logout", data={"csrf": "x" * 10000}, headers={"Origin": url}, timeout=30)
    assert oversized.status_code == 413


def test_a_member_sees_only_its_own_projects(site: Site) -> None:
    bob, resp = login(site.live, "bob")
    assert resp.status_code == 303
    page = bob.get(f"{site.live.url}/status", timeout=30)
    assert page.status_code == 200
    assert site.server_id not in page.text and site.server_name not in page.text and site.domain not in page.text
    assert site.image_name not in page.text, "alice's private image"
    for path in (f"/status/servers/{site.server_id}", f"/status/domains/{site.domain}",
                 "/status/servers/no-such-server", "/status/domains/no-such-domain", "/status/domains/%2e%2e"):
        other = bob.get(site.live.url + path, timeout=30)
        assert other.status_code == 404, path
        assert site.server_name not in other.text
    admin, _ = login(site.live, "admin")
    listed = admin.get(f"{site.live.url}/status", timeout=30).text
    assert site.server_name in listed, "an admin sees every project"
    assert f'href="/status/domains/{CLI_DOMAIN}"' in listed, "and the domains provisioned from the CLI"
    assert admin.get(f"{site.live.url}/status/servers/{site.server_id}", timeout=30).status_code == 200
    cli = admin.get(f"{site.live.url}/status/domains/{CLI_DOMAIN}", timeout=30)
    assert cli.status_code == 200 and "applied" in cli.text and "took" in cli.text and "test:///" in cli.text
    for member in (bob, login(site.live, "alice")[0]):
        assert CLI_DOMAIN not in member.get(f"{site.live.url}/status", timeout=30).text
        assert member.get(f"{site.live.url}/status/domains/{CLI_DOMAIN}", timeout=30).status_code == 404
    shown = login(site.live, "alice")[0].get(f"{site.live.url}/status/servers/{site.server_id}", timeout=30).text
    assert "m1.tiny" in shown and site.image_name in shown, "flavor and image by name"
    assert "test:///" not in shown, "the hypervisor's URI (a host path) is for admins"


def test_guest_output_is_escaped(site: Site) -> None:
    alice, _ = login(site.live, "alice")
    page = alice.get(f"{site.live.url}/status/servers/{site.server_id}", timeout=30).text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "<img" not in page
    assert "\x1b" not in page and "red" in page, "terminal escapes dropped, their text kept"


def test_sessions_expire_and_end_when_the_password_changes(site: Site) -> None:
    url = f"{site.live.url}/status"
    alice, _ = login(site.live, "alice")
    _age(site.live, "seen", 3600 + 1)
    assert alice.get(url, timeout=30, allow_redirects=False).status_code == 303, "idle for an hour"
    alice, _ = login(site.live, "alice")
    _age(site.live, "created", 8 * 3600 + 1)
    assert alice.get(url, timeout=30, allow_redirects=False).status_code == 303, "older than 8 hours"
    alice, _ = login(site.live, "alice")
    _age(site.live, "seen", 1800)  # half an hour idle: still good
    assert alice.get(url, timeout=30, allow_redirects=False).status_code == 200
    set_user(config_path(site.live.layout), "alice", PASSWORD + "-new", "demo", ["member"])
    try:
        assert alice.get(url, timeout=30, allow_redirects=False).status_code == 303, "password changed"
    finally:
        set_user(config_path(site.live.layout), "alice", PASSWORD, "demo", ["member"])


def test_logout_ends_the_session_everywhere(site: Site) -> None:
    alice, _ = login(site.live, "alice")
    stolen = alice.cookies.get(SESSION_COOKIE)
    csrf = csrf_of(alice.get(f"{site.live.url}/status", timeout=30).text)
    out = alice.post(f"{site.live.url}/logout", data={"csrf": csrf}, headers={"Origin": site.live.url}, timeout=30,
                     allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"].endswith("/login")
    replayed = requests.get(f"{site.live.url}/status", cookies={SESSION_COOKIE: stolen}, timeout=30,
                            allow_redirects=False)
    assert replayed.status_code == 303, "the old cookie opens nothing"
    with sqlite3.connect(site.live.layout.state_db) as conn:
        stored = [row[0] for row in conn.execute(f"SELECT digest FROM {TABLE}")]
    assert stolen not in stored, "only digests are stored"


def test_sessions_end_when_the_user_is_disabled_or_removed(site: Site) -> None:
    path = config_path(site.live.layout)
    set_user(path, "dave", PASSWORD, "demo", ["member"])
    dave_id = load_config(path).user_by_name("dave").id
    url = f"{site.live.url}/status"
    dave, _ = login(site.live, "dave")
    assert dave.get(url, timeout=30, allow_redirects=False).status_code == 200
    update_user(path, dave_id, {"enabled": False})
    assert dave.get(url, timeout=30, allow_redirects=False).status_code == 303, "disabled"
    _, refused = login(site.live, "dave")
    assert refused.status_code == 401, "a disabled user cannot log in"
    update_user(path, dave_id, {"enabled": True})
    assert dave.get(url, timeout=30, allow_redirects=False).status_code == 303, "the ended session stays ended"
    dave, _ = login(site.live, "dave")
    assert dave.get(url, timeout=30, allow_redirects=False).status_code == 200
    delete_user(path, dave_id)
    assert dave.get(url, timeout=30, allow_redirects=False).status_code == 303, "removed"


def test_malformed_login_forms_are_refused_naming_the_problem(site: Site) -> None:
    url = site.live.url
    session = requests.Session()
    token = csrf_of(session.get(f"{url}/login", timeout=30).text)
    origin = {"Origin": url}
    as_json = session.post(f"{url}/login", json={"csrf": token, "username": "alice", "password": PASSWORD},
                           headers=origin, timeout=30)
    assert as_json.status_code == 415 and "application/x-www-form-urlencoded" in as_json.text
    big = session.post(f"{url}/login", data={"csrf": token, "username": "alice", "password": "p" * 9000},
                       headers=origin, timeout=30)
    assert big.status_code == 413 and "8192 bytes" in big.text
    for fields, why in (({"username": "", "password": PASSWORD}, "no name"),
                        ({"username": "alice", "password": ""}, "no password"),
                        ({"username": "a" * 256, "password": PASSWORD}, "a name over 255 characters")):
        resp = session.post(f"{url}/login", data={"csrf": token, **fields}, headers=origin, timeout=30)
        assert resp.status_code == 400 and "at most 255 characters" in resp.text, why
        assert "a" * 256 not in resp.text, "the name is not echoed whole"
        token = csrf_of(resp.text)  # each form carries a new token (and cookie)
    latin = session.post(f"{url}/login", data=b"csrf=x&username=%ff", timeout=30,
                         headers={**origin, "Content-Type": "application/x-www-form-urlencoded"})
    assert latin.status_code in (400, 403)
    assert SESSION_COOKIE not in session.cookies


def test_bad_session_settings_are_refused_naming_the_variable() -> None:
    for name, value in (("PROVISION_WEB_SESSION_TTL", "8h"), ("PROVISION_WEB_SESSION_IDLE", "10"),
                        ("PROVISION_WEB_REFRESH", "-1")):
        with pytest.raises(ProvisionError, match=name):
            WebSettings.from_environ({name: value})
    assert WebSettings.from_environ({}) == WebSettings(8 * 3600, 3600, 15)
    assert WebSettings.from_environ({"PROVISION_WEB_REFRESH": "0"}).refresh == 0


def test_an_unreadable_domain_record_does_not_break_the_list(site: Site) -> None:
    broken = site.live.layout.domain_dir("broken.test")
    broken.mkdir(parents=True)
    (broken / "spec.json").write_text("{not json")
    try:
        admin, _ = login(site.live, "admin")
        page = admin.get(f"{site.live.url}/status", timeout=30)
        assert page.status_code == 200 and site.server_name in page.text
        assert "Cannot read the domains' status" in page.text
    finally:
        (broken / "spec.json").unlink()
        broken.rmdir()


def test_an_image_without_a_name_is_listed_by_its_id(site: Site) -> None:
    # Glance allows an image without a name; the list sorts by name and must not break on one.
    headers = {"X-Auth-Token": site.live.token("alice")}
    made = requests.post(f"{site.live.url}/image/v2/images", headers=headers, timeout=30,
                         json={"disk_format": "qcow2", "container_format": "bare"})
    assert made.status_code == 201, made.text
    try:
        session, _ = login(site.live, "alice")
        page = session.get(site.live.url + "/status", timeout=30)
        assert page.status_code == 200 and made.json()["id"] in page.text and site.image_name in page.text
    finally:
        requests.delete(f"{site.live.url}/image/v2/images/{made.json()['id']}", headers=headers, timeout=30)
