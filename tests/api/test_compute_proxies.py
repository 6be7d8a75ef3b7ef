"""Nova's deprecated informational APIs (issue #12): the os-networks and os-tenant-networks proxies over
Neutron's networks (gone at 2.36), the extension list of the APIs served, and the legacy v2 version document."""

from __future__ import annotations

from typing import Any

import requests
from apitest import Live, live  # noqa: F401 (fixture)

V236 = {"OpenStack-API-Version": "compute 2.36"}


def _call(live: Live, path: str, user: str = "alice", headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{live.url}/compute/v2.1{path}", timeout=60,
                        headers={"X-Auth-Token": live.token(user), **(headers or {})})


def test_network_proxies_show_neutrons_networks(live: Live) -> None:
    net = requests.post(f"{live.url}/network/v2.0/networks", json={"network": {"name": "proxied"}}, timeout=120,
                        headers={"X-Auth-Token": live.token("alice")}).json()["network"]
    subnet = requests.post(f"{live.url}/network/v2.0/subnets", timeout=60, headers={"X-Auth-Token": live.token("alice")},
                           json={"subnet": {"network_id": net["id"], "cidr": "10.88.0.0/24", "ip_version": 4}})
    assert subnet.status_code == 201, subnet.text
    for proxy in ("os-networks", "os-tenant-networks"):
        listed = {n["label"]: n for n in _call(live, f"/{proxy}").json()["networks"]}
        assert listed["proxied"] == {"id": net["id"], "label": "proxied", "cidr": "10.88.0.0/24"}
        assert "default" in listed
        shown: dict[str, Any] = _call(live, f"/{proxy}/{net['id']}").json()["network"]
        assert shown == listed["proxied"]
        assert _call(live, f"/{proxy}/{net['id']}", user="bob").status_code == 404, "another project's"
        assert _call(live, f"/{proxy}/no-such-network").status_code == 404
        assert _call(live, f"/{proxy}", headers=V236).status_code == 404, "removed at 2.36"


def test_extensions_and_the_legacy_version(live: Live) -> None:
    extensions = _call(live, "/extensions").json()["extensions"]
    aliases = {e["alias"] for e in extensions}
    assert {"os-hosts", "os-aggregates", "os-server-tags", "os-console-output"} <= aliases
    assert _call(live, "/extensions/os-hosts").json()["extension"]["name"] == "Hosts"
    # Nova still lists os-consoles, whose API it removed (no remote consoles here either).
    assert _call(live, "/extensions/os-consoles").json()["extension"]["name"] == "Consoles"
    assert _call(live, "/os-consoles").status_code == 404
    assert _call(live, "/extensions/os-no-such").status_code == 404
    versions = requests.get(f"{live.url}/compute/", timeout=30).json()["versions"]
    for version in versions:
        (self_link,) = [link["href"] for link in version["links"] if link["rel"] == "self"]
        document = requests.get(self_link, timeout=30).json()["version"]
        assert document["id"] == version["id"] and self_link in [link["href"] for link in document["links"]]
