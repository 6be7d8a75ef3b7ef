"""Request bodies are validated against api/openapi.yaml by one hook (api/validation.py) before the responder:
each service answers a refused body with its own 400 body, naming the field path, never echoing more than a
cut of the value; and the spec agrees with what the code dispatches on, so the two cannot drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from apitest import Live, live  # noqa: F401 (fixtures)

import api

SPEC = Path(api.__file__).parent / "openapi.yaml"
NOVA_22 = {"OpenStack-API-Version": "compute 2.2"}


def _send(live: Live, method: str, path: str, body: Any, user: str = "alice",
          headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{live.url}{path}", json=body, timeout=30,
                            headers={"X-Auth-Token": live.token(user), **(headers or {})})


def _project(live: Live, user: str) -> str:
    return live.sdk(user).current_project_id


# -- each service's error body, the field path, the value cut ------------------------------------

@pytest.mark.parametrize(("path", "body", "message"), [
    # a wrong type
    ("/compute/v2.1/os-keypairs", {"keypair": {"name": 5}}, "keypair.name: 5 is not a string"),
    # an unknown member where Nova refuses extras, and one a later microversion accepts
    ("/compute/v2.1/os-keypairs", {"keypair": {"name": "k", "colour": "red"}}, "keypair: unknown field 'colour'"),
    ("/compute/v2.1/os-keypairs", {"keypair": {"name": "k", "type": "ssh"}},
     "keypair: unknown field 'type': it is accepted from microversion 2.2 on"),
    # the path into lists and maps
    ("/compute/v2.1/os-server-groups", {"server_group": {"name": "g", "policies": ["nearby"]}},
     "server_group.policies[0]: 'nearby': use one of affinity, anti-affinity"),
    # not an object at all
    ("/compute/v2.1/os-keypairs", [1, 2], "body: a list is not an object"),
    ("/compute/v2.1/os-keypairs", {}, "keypair: is required"),
])
def test_nova_refusals_name_the_field(live: Live, path: str, body: Any, message: str) -> None:
    resp = _send(live, "POST", path, body)
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"badRequest": {"code": 400, "message": message}}


def test_a_schema_by_microversion(live: Live) -> None:
    """type is refused at 2.1 and accepted from 2.2; an unknown type is refused at 2.2."""
    made = _send(live, "POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "v22", "type": "ssh"}},
                 headers=NOVA_22)
    assert made.status_code == 201, made.text
    wrong = _send(live, "POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "v22b", "type": "pgp"}},
                  headers=NOVA_22)
    assert wrong.json() == {"badRequest": {"code": 400, "message": "keypair.type: 'pgp': use one of ssh, x509"}}


def test_cinder_too_long_and_not_echoed(live: Live) -> None:
    before = _send(live, "GET", "/volume/v3/volumes", None).json()["volumes"]
    long_name = _send(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "name": "n" * 300}})
    assert long_name.json() == {"badRequest": {"code": 400, "message": "volume.name: is longer than 255 characters"}}
    zone = _send(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "availability_zone": "z" * 10_000}})
    assert zone.status_code == 400
    assert zone.json()["badRequest"]["message"] == f"volume.availability_zone: '{'z' * 40}'…: use one of nova"
    value = _send(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "metadata": {"k": "v" * 256}}})
    assert value.json()["badRequest"]["message"] == "volume.metadata.k: is longer than 255 characters"
    zero = _send(live, "POST", "/volume/v3/volumes", {"volume": {"size": 0}})
    assert zero.json()["badRequest"]["message"] == "volume.size: is below the minimum of 1"
    assert _send(live, "GET", "/volume/v3/volumes", None).json()["volumes"] == before, "nothing was created"


def test_cinder_actions_one_of_the_known(live: Live) -> None:
    volume = _send(live, "POST", "/volume/v3/volumes", {"volume": {"size": 1, "name": "acts"}}).json()["volume"]
    url = f"/volume/v3/volumes/{volume['id']}/action"
    two = _send(live, "POST", url, {"os-reserve": None, "os-unreserve": None})
    assert two.json() == {"badRequest": {"code": 400, "message": "body: has more than 1 members"}}
    unknown = _send(live, "POST", url, {"os-fly": {}})
    assert unknown.json() == {"badRequest": {"code": 400, "message": "body: unknown field 'os-fly'"}}
    bootable = _send(live, "POST", url, {"os-set_bootable": {"bootable": "maybe"}})
    assert bootable.json()["badRequest"]["message"].startswith("os-set_bootable.bootable: 'maybe' does not match")
    # A known action Cinder has and this API does not: the volume is looked up first (404 for a missing one).
    assert _send(live, "POST", "/volume/v3/volumes/no-such-volume/action",
                 {"os-migrate_volume": {}}).status_code == 404
    refused = _send(live, "POST", url, {"os-migrate_volume": {}})
    assert refused.status_code == 400
    assert "os-migrate_volume is not supported" in refused.json()["badRequest"]["message"]
    # os-attach's form: a mountpoint and a target (instance_uuid or host_name), as Cinder's schema.
    no_target = _send(live, "POST", url, {"os-attach": {"mountpoint": "/dev/vdb"}})
    assert no_target.json() == {"badRequest": {"code": 400, "message": "os-attach.instance_uuid: is required"}}


def test_neutron_error_body(live: Live) -> None:
    resp = _send(live, "PUT", f"/network/v2.0/quotas/{_project(live, 'alice')}", {"quota": {"network": "lots"}},
                 user="admin")
    assert resp.status_code == 400
    assert resp.json() == {"NeutronError": {"type": "BadRequest", "detail": "",
                                            "message": "quota.network: 'lots' does not match ^-?[0-9]{1,10}$"}}
    extra = _send(live, "PUT", f"/network/v2.0/quotas/{_project(live, 'alice')}", {"quota": {"floors": 3}},
                  user="admin")
    assert extra.json()["NeutronError"]["message"] == "quota: unknown field 'floors'"


def test_glance_error_body(live: Live) -> None:
    resp = _send(live, "POST", "/image/v2/images", {"name": "img", "min_ram": "lots"})
    assert resp.status_code == 400
    assert resp.json() == {"error": {"code": 400, "title": "Bad Request",
                                     "message": "min_ram: 'lots' is not an integer"}}
    prop = _send(live, "POST", "/image/v2/images", {"name": "img", "colour": "r" * 300})
    assert prop.json()["error"]["message"] == "colour: is longer than 255 characters"


def test_semantic_checks_stay_in_code(live: Live) -> None:
    """What the schema cannot know is still refused by the responder, in the service's words."""
    source = _send(live, "POST", "/volume/v3/volumes", {"volume": {"name": "nosize"}})
    assert source.json() == {"badRequest": {"code": 400, "message": "volume.size: is required"}}
    group = _send(live, "POST", "/compute/v2.1/os-server-groups", {"server_group": {
        "name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}},
        headers={"OpenStack-API-Version": "compute 2.64"})
    assert group.json()["badRequest"]["message"] == \
        "server_group.rules.max_server_per_host: is for the anti-affinity policy only"


# -- the spec and the code agree -----------------------------------------------------------------

def _media(operation: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    body = operation.get("requestBody", {})
    if "$ref" in body:
        body = document["components"]["requestBodies"][body["$ref"].rsplit("/", 1)[1]]
    return body.get("content", {}).get("application/json")


def test_every_json_body_is_validated_or_says_why() -> None:
    """A JSON body is the hook's unless its media type names why it is still checked by hand."""
    from api.validation import load_schemas

    document = yaml.safe_load(SPEC.read_text())
    validated = load_schemas(SPEC)  # compiles every schema: a broken one fails here
    for path, item in document["paths"].items():
        for method, operation in item.items():
            media = _media(operation, document) if method != "parameters" else None
            if media is None:
                continue
            if (path, method.upper()) not in validated:
                assert str(media.get("x-validated-in-code", "")).strip(), (path, method)


def test_volume_actions_are_the_codes() -> None:
    from api.volume.resources import UNSUPPORTED_ACTIONS, VolumeActions

    document = yaml.safe_load(SPEC.read_text())
    media = _media(document["paths"]["/volume/v3/volumes/{volume_id}/action"]["post"], document)
    assert set(media["schema"]["properties"]) == set(VolumeActions.HANDLERS) | set(UNSUPPORTED_ACTIONS)


@pytest.mark.parametrize(("path", "key", "service"), [
    ("/compute/v2.1/os-quota-sets/{project_id}", "quota_set", "NOVA"),
    ("/volume/v3/os-quota-sets/{project_id}", "quota_set", "CINDER"),
    ("/network/v2.0/quotas/{project_id}", "quota", "NEUTRON"),
])
def test_quota_members_are_the_codes(path: str, key: str, service: str) -> None:
    from api.quota import resources
    from api.quota.models import DEFAULTS

    updates = getattr(resources, f"{service}_UPDATES")
    document = yaml.safe_load(SPEC.read_text())
    schema = _media(document["paths"][path]["put"], document)["schema"]["properties"][key]
    assert set(schema["properties"]) == set(DEFAULTS[updates.kind]) | set(updates.ignored)
    assert schema["additionalProperties"] is False


def test_image_names_are_the_stores() -> None:
    from provisioner.images.names import _NAME

    document = yaml.safe_load(SPEC.read_text())
    media = _media(document["paths"]["/image/v2/images"]["post"], document)
    assert media["schema"]["properties"]["name"]["pattern"] == f"^{_NAME.pattern}$"
