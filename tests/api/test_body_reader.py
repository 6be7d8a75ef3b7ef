"""The one bounded body reader (api/http.py read_json_value) as its two kinds of caller answer through it: a
Glance JSON patch keeps its own wording, a JSON object body the parser's reason. The exact messages are pinned,
since both callers once read and bounded the body each on its own."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from apitest import Live, live  # noqa: F401 (fixture)

PATCH_21 = "application/openstack-images-v2.1-json-patch"
LIMIT = 1 << 20  # max_json_body's default


@pytest.fixture(scope="module")
def image_url(live: Live) -> str:
    resp = requests.post(f"{live.url}/image/v2/images", json={"name": "body-reader"},
                         headers={"X-Auth-Token": live.token("alice")}, timeout=30)
    assert resp.status_code == 201, resp.text
    return f"{live.url}/image/v2/images/{resp.json()['id']}"


def _patch(live: Live, url: str, body: Any) -> tuple[int, str]:
    resp = requests.patch(url, data=body, timeout=30,
                          headers={"X-Auth-Token": live.token("alice"), "Content-Type": PATCH_21})
    return resp.status_code, resp.json()["error"]["message"]


@pytest.mark.parametrize("body", [b'[{"op": ', b"\xff\xfe[]", b"[" * 100_000 + b"]" * 100_000],
                         ids=["cut", "not-utf", "nested"])
def test_a_malformed_patch_is_a_400_in_its_own_words(live: Live, image_url: str, body: bytes) -> None:
    assert _patch(live, image_url, body) == (400, "body: malformed JSON patch")


def test_a_patch_with_a_lone_surrogate_is_refused(live: Live, image_url: str) -> None:
    # Was a 200 storing 'a\ud800' (no JSON object body takes one: the store cannot encode it).
    body = b'[{"op": "add", "path": "/k", "value": "a\\ud800"}]'
    assert _patch(live, image_url, body) == (400, "body: malformed JSON: a \\u escape is a lone UTF-16 surrogate, "
                                                  "not text")


def test_an_oversized_patch_is_a_413_declared_or_chunked(live: Live, image_url: str) -> None:
    # The transport (api/transport.py) may refuse it first, at the same limit: either way a 413 naming it.
    body = b'[{"op": "add", "path": "/x", "value": "' + b"a" * LIMIT + b'"}]'
    for sent in (body, iter([body[:LIMIT], body[LIMIT:]])):
        status, message = _patch(live, image_url, sent)
        assert status == 413 and f"exceeds the limit of {LIMIT}" in message, message


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"server": ', "Expecting value: line 1 column 12 (char 11)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"x": "a\\ud800"}', "a \\u escape is a lone UTF-16 surrogate, not text"),
], ids=["cut", "nested", "surrogate"])
def test_a_malformed_json_body_says_why(live: Live, body: bytes, reason: str) -> None:
    resp = requests.post(f"{live.url}/compute/v2.1/os-keypairs", data=body, timeout=30,
                         headers={"X-Auth-Token": live.token("alice"), "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == f"body: malformed JSON: {reason}"
