"""Volume type encryption (issue #12): Cinder's records at /types/{id}/encryption, refused while volumes of the type
exist; a volume of an encrypted type is refused (no key manager here)."""

from __future__ import annotations

import uuid

from apitest import live  # noqa: F401 (fixture)
from test_cinder_conformance import _call, _volume

SPECS = {"provider": "luks", "control_location": "front-end", "cipher": "aes-xts-plain64", "key_size": 256}


def _type(live, name: str) -> str:
    made = _call(live, "POST", "admin", "/types", {"volume_type": {"name": name}})
    assert made.status_code == 200, made.text
    return made.json()["volume_type"]["id"]


def test_encryption_lifecycle(live) -> None:
    type_id = _type(live, "secret")
    assert _call(live, "GET", "admin", f"/types/{type_id}/encryption").json() == {}
    made = _call(live, "POST", "admin", f"/types/{type_id}/encryption", {"encryption": SPECS})
    assert made.status_code == 200, made.text
    created = made.json()["encryption"]
    assert {k: created[k] for k in SPECS} == SPECS and created["volume_type_id"] == type_id
    encryption_id = created["encryption_id"]
    shown = _call(live, "GET", "admin", f"/types/{type_id}/encryption").json()
    assert {k: shown[k] for k in SPECS} == SPECS and shown["encryption_id"] == encryption_id
    twice = _call(live, "POST", "admin", f"/types/{type_id}/encryption", {"encryption": SPECS})
    assert twice.status_code == 400 and "already exists" in twice.json()["badRequest"]["message"]

    change = {"provider": "SomeProvider", "control_location": "back-end", "key_size": 128}
    updated = _call(live, "PUT", "admin", f"/types/{type_id}/encryption/{encryption_id}", {"encryption": change})
    assert updated.status_code == 200 and updated.json() == {"encryption": change}
    assert _call(live, "GET", "admin", f"/types/{type_id}/encryption/cipher").json() == {"cipher": "aes-xts-plain64"}
    assert _call(live, "GET", "admin", f"/types/{type_id}/encryption/key_size").json() == {"key_size": 128}
    assert _call(live, "GET", "admin", f"/types/{type_id}/encryption/colour").status_code == 404

    # No key manager: no volume of an encrypted type, created or retyped.
    refused = _call(live, "POST", "alice", "/volumes", {"volume": {"size": 1, "volume_type": "secret"}})
    assert refused.status_code == 400
    assert "volume.volume_type" in refused.json()["badRequest"]["message"]
    assert "attach_encrypted_volume=false" in refused.json()["badRequest"]["message"]
    plain = _volume(live, "alice", "plain")
    retyped = _call(live, "POST", "alice", f"/volumes/{plain['id']}/action", {"os-retype": {"new_type": "secret"}})
    assert retyped.status_code == 400 and "os-retype.new_type" in retyped.json()["badRequest"]["message"]

    elsewhere = _call(live, "DELETE", "admin", f"/types/{type_id}/encryption/{uuid.uuid4()}")
    assert elsewhere.status_code == 404
    assert _call(live, "DELETE", "admin", f"/types/{type_id}/encryption/{encryption_id}").status_code == 202
    assert _call(live, "GET", "admin", f"/types/{type_id}/encryption").json() == {}
    gone = _call(live, "PUT", "admin", f"/types/{type_id}/encryption/{encryption_id}", {"encryption": change})
    assert gone.status_code == 404


def test_encryption_refused_while_in_use(live) -> None:
    type_id = _type(live, "used")
    _volume(live, "alice", "of-used", volume_type="used")
    refused = _call(live, "POST", "admin", f"/types/{type_id}/encryption", {"encryption": SPECS})
    assert refused.status_code == 400
    assert refused.json()["badRequest"]["message"] == "Cannot create encryption specs. Volume type in use."


def test_encryption_input(live) -> None:
    type_id = _type(live, "checked")
    path = f"/types/{type_id}/encryption"
    for body, field in (({"cipher": "aes"}, "encryption.provider"),
                        ({**SPECS, "control_location": "middle"}, "encryption.control_location"),
                        ({**SPECS, "key_size": -1}, "encryption.key_size"),
                        ({**SPECS, "key_size": "big"}, "encryption.key_size"),
                        ({**SPECS, "colour": "red"}, "encryption")):
        resp = _call(live, "POST", "admin", path, {"encryption": body})
        assert resp.status_code == 400 and resp.json()["badRequest"]["message"].startswith(field), resp.text
    assert _call(live, "POST", "alice", path, {"encryption": SPECS}).status_code == 403
    assert _call(live, "GET", "alice", path).status_code == 403
    assert _call(live, "GET", "admin", f"/types/{uuid.uuid4()}/encryption").status_code == 404
    # Deleting the type takes its encryption along.
    assert _call(live, "POST", "admin", path, {"encryption": SPECS}).status_code == 200
    assert _call(live, "DELETE", "admin", f"/types/{type_id}").status_code == 202
    assert _call(live, "GET", "admin", path).status_code == 404
