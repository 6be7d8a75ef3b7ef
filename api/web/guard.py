"""What every status page response and every POST to it go through: security headers, cookies, CSRF checks."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

import falcon

SESSION_COOKIE = "provision_session"
LOGIN_COOKIE = "provision_login"  # the login form's own CSRF token (double submit: there is no session yet)
MAX_FORM_BYTES = 8192
FORM = "application/x-www-form-urlencoded"

HEADERS = {
    # No script at all (the refresh is a <meta>), styles from the one stylesheet the app serves.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends `Origin: null` with the page's own form POSTs (the Fetch
    # standard), which check_origin must refuse. same-origin sends Referer and Origin to this site only.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the page answers with an error page: its status and a message for the user (no user input in it)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def secure_headers(resp: falcon.Response) -> None:
    """The security headers every page, redirect and error of the status page carries."""
    for name, value in HEADERS.items():
        resp.set_header(name, value)


def is_tls(req: falcon.Request) -> bool:
    """Whether the request came over TLS (to this process: a proxy's X-Forwarded-Proto is not trusted)."""
    return req.scheme == "https"


def set_cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str, max_age: int, path: str) -> None:
    """An HttpOnly, SameSite=Strict cookie (Secure over TLS)."""
    resp.set_cookie(name, value, max_age=max_age, path=path, secure=is_tls(req), http_only=True, same_site="Strict")


def clear_cookie(resp: falcon.Response, name: str, path: str) -> None:
    """Tell the browser to drop the cookie."""
    resp.unset_cookie(name, path=path, same_site="Strict")


def cookie(req: falcon.Request, name: str) -> str | None:
    """The cookie's value (the first, if a client sent several)."""
    values = req.get_cookie_values(name)
    return values[0] if values else None


def check_origin(req: falcon.Request) -> None:
    """Refused (403) unless the POST's Origin, or without one its Referer, is this server's own origin."""
    own = f"{req.scheme}://{req.netloc}"
    origin = req.get_header("Origin")
    if origin is not None:
        if origin != own:
            raise Refused(403, "the form was not sent from this site (Origin does not match)")
        return
    referer = req.get_header("Referer")
    if referer is None or not (referer == own or referer.startswith(own + "/")):
        raise Refused(403, "the form was not sent from this site (no matching Origin or Referer)")


def check_token(expected: str | None, given: str | None) -> None:
    """Refused (403) unless the form's CSRF token is the expected one (compared in constant time)."""
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode(errors="replace")):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and send it again")


def read_form(req: falcon.Request) -> dict[str, str]:
    """The urlencoded body's fields (the first value of each), bounded; Refused (400/413/415) otherwise."""
    if (req.content_type or "").split(";")[0].strip().lower() != FORM:
        raise Refused(415, f"the form must be sent as {FORM}")
    if req.content_length is not None and req.content_length > MAX_FORM_BYTES:
        raise Refused(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise Refused(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form is not valid UTF-8 urlencoded text") from None
    return {name: values[0] for name, values in fields.items()}
