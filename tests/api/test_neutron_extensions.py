"""Neutron's extensions on a live server (issue #12): the extension list as tempest.conf states it, the v2.0
resource document, agents and service providers (none), port binding, allowed address pairs, extra DHCP
options, tags and their filters, the fixed_ips and unknown-filter rules, and routers made by an admin for
another project or with a chosen gateway address. Plain HTTP, as Tempest sends it; the CLI where it helps."""

from __future__ import annotations

from typing import Any

import requests

from api.compute.views import HOST
from conformance.tempest_conf import NETWORK_EXTENSIONS

from apitest import live  # noqa: F401 (fixture)

NET = "/network/v2.0"


def _call(live, method: str, path: str, user: str = "alice", body: Any = None) -> requests.Response:
    return requests.request(method, f"{live.url}{NET}{path}", headers={"X-Auth-Token": live.token(user)},
                            json=body, timeout=120)


def _ok(resp: requests.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def _refused(resp: requests.Response, status: int, text: str) -> None:
    assert resp.status_code == status, resp.text
    assert text in resp.json()["NeutronError"]["message"], resp.text


def _network(live, name: str, cidr: str, user: str = "alice") -> tuple[dict[str, Any], dict[str, Any]]:
    net = _ok(_call(live, "POST", "/networks", user, {"network": {"name": name}}), 201)["network"]
    sub = _ok(_call(live, "POST", "/subnets", user, {"subnet": {"network_id": net["id"], "cidr": cidr,
                                                                "ip_version": 4}}), 201)["subnet"]
    return net, sub


def test_extensions_are_what_tempest_conf_states_and_what_is_served(live) -> None:
    listed = _ok(_call(live, "GET", "/extensions"))["extensions"]
    assert sorted(e["alias"] for e in listed) == sorted(NETWORK_EXTENSIONS)
    for extension in listed:
        assert _ok(_call(live, "GET", f"/extensions/{extension['alias']}"))["extension"] == extension
    resources = _ok(requests.get(f"{live.url}{NET}/", timeout=30))["resources"]
    assert {"network", "subnet", "port", "router"} <= {r["name"] for r in resources}
    assert all(r["links"][0]["href"] == f"{live.url}{NET}/{r['collection']}" for r in resources)
    # No agents run here, for a member or an admin; none to show, change or delete.
    assert _ok(_call(live, "GET", "/agents"))["agents"] == []
    assert _ok(_call(live, "GET", "/agents", "admin"))["agents"] == []
    for method in ("GET", "PUT", "DELETE"):
        _refused(_call(live, method, "/agents/nope", "admin", {"agent": {}} if method == "PUT" else None), 404,
                 "Agent 'nope'")
    assert _ok(_call(live, "GET", "/service-providers"))["service_providers"] == []


def test_port_binding_is_an_admins(live) -> None:
    net, _ = _network(live, "bind-net", "10.131.0.0/24", "admin")
    bound = _ok(_call(live, "POST", "/ports", "admin", {"port": {"network_id": net["id"], "binding:host_id": HOST,
                                                                  "binding:profile": {"k": "v"}}}), 201)["port"]
    assert (bound["binding:host_id"], bound["binding:vif_type"]) == (HOST, "bridge")
    assert bound["binding:profile"] == {"k": "v"} and bound["binding:vnic_type"] == "normal"
    plain = _ok(_call(live, "POST", "/ports", "admin", {"port": {"network_id": net["id"]}}), 201)["port"]
    assert (plain["binding:host_id"], plain["binding:vif_type"], plain["binding:vif_details"]) == ("", "unbound", {})
    moved = _ok(_call(live, "PUT", f"/ports/{plain['id']}", "admin", {"port": {"binding:host_id": "elsewhere"}}))
    assert moved["port"]["binding:vif_type"] == "binding_failed"  # the engine builds on one host only
    listed = {p["id"]: p for p in _ok(_call(live, "GET", "/ports", "admin"))["ports"]}
    assert listed[plain["id"]]["binding:host_id"] == "elsewhere" and listed[bound["id"]]["binding:host_id"] == HOST

    mine, _ = _network(live, "bind-mine", "10.132.0.0/24")
    port = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": mine["id"]}}), 201)["port"]
    assert "binding:host_id" not in port and port["binding:vnic_type"] == "normal"
    _refused(_call(live, "POST", "/ports", body={"port": {"network_id": mine["id"], "binding:host_id": HOST}}),
             403, "binding:host_id")
    _refused(_call(live, "PUT", f"/ports/{port['id']}", body={"port": {"binding:profile": {}}}), 403,
             "binding:profile")
    _refused(_call(live, "PUT", f"/ports/{port['id']}", body={"port": {"binding:vnic_type": "sriov"}}), 400,
             "port.binding:vnic_type")


def test_allowed_address_pairs_and_extra_dhcp_options(live) -> None:
    net, _ = _network(live, "pairs-net", "10.133.0.0/24")
    pairs = [{"ip_address": "10.133.0.50", "mac_address": "fa:16:3e:00:00:01"}, {"ip_address": "10.133.1.0/28"}]
    options = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
               {"opt_name": "tftp-server", "opt_value": "fd00::1", "ip_version": 6}]
    port = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"], "allowed_address_pairs": pairs,
                                                            "extra_dhcp_opts": options}}), 201)["port"]
    assert port["allowed_address_pairs"] == [pairs[0], {"ip_address": "10.133.1.0/28",
                                                        "mac_address": port["mac_address"]}]
    assert port["extra_dhcp_opts"] == [{**options[0], "ip_version": 4}, options[1]]
    listed = _ok(_call(live, "GET", f"/ports?id={port['id']}"))["ports"][0]
    assert listed["allowed_address_pairs"] == port["allowed_address_pairs"]

    # An update replaces the pairs, merges the options by name and version; a null value removes one.
    changed = _ok(_call(live, "PUT", f"/ports/{port['id']}", body={"port": {
        "allowed_address_pairs": [{"ip_address": "10.133.0.60"}],
        "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "grub.efi"},
                            {"opt_name": "tftp-server", "opt_value": None, "ip_version": 6},
                            {"opt_name": "server-ip-address", "opt_value": "10.133.0.1"}]}}))["port"]
    assert changed["allowed_address_pairs"] == [{"ip_address": "10.133.0.60", "mac_address": port["mac_address"]}]
    assert changed["extra_dhcp_opts"] == [{"opt_name": "bootfile-name", "opt_value": "grub.efi", "ip_version": 4},
                                          {"opt_name": "server-ip-address", "opt_value": "10.133.0.1",
                                           "ip_version": 4}]
    shown = _ok(_call(live, "GET", f"/ports/{port['id']}"))["port"]
    assert shown["extra_dhcp_opts"] == changed["extra_dhcp_opts"]

    for body, field in (({"allowed_address_pairs": [{"ip_address": "10.133.0.999"}]},
                         "port.allowed_address_pairs[0].ip_address"),
                        ({"allowed_address_pairs": [{"ip_address": "10.133.0.7", "mac_address": "nope"}]},
                         "port.allowed_address_pairs[0].mac_address"),
                        ({"allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:01"}]},
                         "port.allowed_address_pairs[0].ip_address"),
                        ({"allowed_address_pairs": [{"ip_address": "10.133.0.7"}] * 2}, "duplicate address pair"),
                        ({"allowed_address_pairs": [{"ip_address": f"10.133.2.{n}"} for n in range(11)]},
                         "exceeds the maximum 10"),
                        ({"extra_dhcp_opts": [{"opt_value": "x"}]}, "port.extra_dhcp_opts[0].opt_name"),
                        ({"extra_dhcp_opts": [{"opt_name": " ", "opt_value": "x"}]},
                         "port.extra_dhcp_opts[0].opt_name"),
                        ({"extra_dhcp_opts": [{"opt_name": "a", "opt_value": "x", "ip_version": 5}]},
                         "port.extra_dhcp_opts[0].ip_version")):
        _refused(_call(live, "PUT", f"/ports/{port['id']}", body={"port": body}), 400, field)
    assert _ok(_call(live, "GET", f"/ports/{port['id']}"))["port"]["allowed_address_pairs"] == \
        changed["allowed_address_pairs"]


def test_tags_and_tag_filters(live) -> None:
    net, sub = _network(live, "tag-net", "10.134.0.0/24")
    other, _ = _network(live, "tag-other", "10.135.0.0/24")
    base = f"/networks/{net['id']}/tags"
    assert _ok(_call(live, "PUT", base, body={"tags": ["red", "blue", "red"]}))["tags"] == ["red", "blue"]
    assert _call(live, "PUT", f"{base}/green").status_code == 201
    assert _call(live, "GET", f"{base}/green").status_code == 204
    assert _ok(_call(live, "GET", base))["tags"] == ["red", "blue", "green"]
    assert _ok(_call(live, "GET", f"/networks/{net['id']}"))["network"]["tags"] == ["red", "blue", "green"]
    assert _call(live, "DELETE", f"{base}/blue").status_code == 204
    _refused(_call(live, "GET", f"{base}/blue"), 404, "Tag 'blue'")
    _refused(_call(live, "DELETE", f"{base}/blue"), 404, "Tag 'blue'")
    _ok(_call(live, "PUT", f"/networks/{other['id']}/tags", body={"tags": ["blue"]}))

    def names(query: str) -> set[str]:
        return {n["name"] for n in _ok(_call(live, "GET", f"/networks?{query}"))["networks"]} & {"tag-net",
                                                                                               "tag-other"}

    assert names("tags=red,green") == {"tag-net"} and names("tags=red,blue") == set()
    assert names("tags-any=green,blue") == {"tag-net", "tag-other"}
    assert names("not-tags=red,green") == {"tag-other"} and names("not-tags-any=blue") == {"tag-net"}

    # Subnets, ports and routers carry tags too; the bad and the foreign are refused.
    router = _ok(_call(live, "POST", "/routers", body={"router": {}}), 201)["router"]
    for path in (f"/subnets/{sub['id']}", f"/routers/{router['id']}"):
        _ok(_call(live, "PUT", f"{path}/tags", body={"tags": ["x"]}))
        assert _ok(_call(live, "GET", path))[path.split("/")[1][:-1]]["tags"] == ["x"]
        assert _call(live, "DELETE", f"{path}/tags").status_code == 204
        assert _ok(_call(live, "GET", f"{path}/tags"))["tags"] == []
    _refused(_call(live, "PUT", base, body={"tags": ["a" * 256]}), 400, "tags[0]")
    _refused(_call(live, "PUT", base, body={"tags": [f"t{n}" for n in range(51)]}), 400, "tags")
    _refused(_call(live, "PUT", base, body={"tag": []}), 400, "unknown field 'tag'")
    _refused(_call(live, "PUT", base, "bob", {"tags": []}), 404, "could not be found")
    _refused(_call(live, "GET", f"/networks/{net['id']}/tags", "bob"), 404, "could not be found")
    _refused(_call(live, "GET", "/networks?colour=red"), 400, "[colour] is invalid attribute for filtering")


def test_fixed_ips_filters(live) -> None:
    net, sub = _network(live, "fip-filter", "10.136.0.0/24")
    first = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.136.0.19"}]}}), 201)["port"]
    second = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.136.0.21"}]}}), 201)["port"]

    def ids(query: str) -> set[str]:
        return {p["id"] for p in _ok(_call(live, "GET", f"/ports?{query}"))["ports"]}

    assert ids("fixed_ips=ip_address%3D10.136.0.19") == {first["id"]}
    assert ids(f"fixed_ips=subnet_id%3D{sub['id']}") == {first["id"], second["id"]}
    assert ids("fixed_ips=ip_address_substr%3D10.136.0.1") == {first["id"]}
    assert ids("fixed_ips=ip_address_substr%3D136.0.") == {first["id"], second["id"]}
    assert ids(f"fixed_ips=subnet_id%3D{sub['id']}&fixed_ips=ip_address%3D10.136.0.21") == {second["id"]}
    _refused(_call(live, "GET", "/ports?fixed_ips=mac%3Dx"), 400, "fixed_ips")


def test_routers_for_another_project_and_chosen_gateway_addresses(live) -> None:
    net, sub = _network(live, "rif-net", "10.137.0.0/24")
    project = net["project_id"]  # alice's
    router = _ok(_call(live, "POST", "/routers", "admin", {"router": {"name": "for-alice", "project_id": project}}),
                 201)["router"]
    assert router["project_id"] == project
    assert router["id"] in {r["id"] for r in _ok(_call(live, "GET", "/routers"))["routers"]}
    _refused(_call(live, "POST", "/routers", "bob", {"router": {"project_id": project}}), 403, "admin")

    public = _ok(_call(live, "POST", "/networks", "admin", {"network": {"name": "gw-public",
                                                                        "router:external": True}}), 201)["network"]
    psub = _ok(_call(live, "POST", "/subnets", "admin", {"subnet": {"network_id": public["id"], "ip_version": 4,
                                                                    "cidr": "192.0.2.64/28"}}), 201)["subnet"]
    held = _ok(_call(live, "POST", "/ports", "admin", {"port": {"network_id": public["id"]}}), 201)["port"]
    used = {"network_id": public["id"], "external_fixed_ips": [held["fixed_ips"][0]]}
    resp = _call(live, "POST", "/routers", "admin", {"router": {"external_gateway_info": used}})
    _refused(resp, 409, "already allocated")
    assert resp.json()["NeutronError"]["type"] == "IpAddressAlreadyAllocated"  # Neutron's name, clients match it
    chosen = {"network_id": public["id"], "external_fixed_ips": [{"subnet_id": psub["id"],
                                                                  "ip_address": "192.0.2.70"}]}
    _refused(_call(live, "POST", "/routers", body={"router": {"external_gateway_info": chosen}}), 403,
             "external_fixed_ips")
    gateway = _ok(_call(live, "POST", "/routers", "admin", {"router": {"external_gateway_info": chosen}}),
                  201)["router"]["external_gateway_info"]
    assert gateway["external_fixed_ips"] == [{"subnet_id": psub["id"], "ip_address": "192.0.2.70"}]

    # A router's interface port may be updated (not deleted): naming its subnet keeps its address.
    interface = _ok(_call(live, "PUT", f"/routers/{router['id']}/add_router_interface",
                          body={"subnet_id": sub["id"]}))
    port = _ok(_call(live, "PUT", f"/ports/{interface['port_id']}",
                     body={"port": {"fixed_ips": [{"subnet_id": sub["id"]}], "name": "rif"}}))["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.137.0.1"}] and port["name"] == "rif"
    assert port["device_owner"] == "network:router_interface" and port["status"] == "ACTIVE"
    _refused(_call(live, "DELETE", f"/ports/{port['id']}"), 409, "network:router_interface")
    _ok(_call(live, "PUT", f"/routers/{router['id']}/remove_router_interface", body={"subnet_id": sub["id"]}))


def test_subnets_allocated_from_a_pool(live) -> None:
    pool = _ok(_call(live, "POST", "/subnetpools", body={"subnetpool": {
        "name": "alloc", "prefixes": ["10.140.0.0/22"], "default_prefixlen": 24, "min_prefixlen": 23,
        "max_prefixlen": 26}}), 201)["subnetpool"]
    first = _ok(_call(live, "POST", "/networks", body={"network": {"name": "alloc-a"}}), 201)["network"]
    second = _ok(_call(live, "POST", "/networks", body={"network": {"name": "alloc-b"}}), 201)["network"]

    def subnet(network: dict[str, Any], **extra: Any) -> requests.Response:
        return _call(live, "POST", "/subnets", body={"subnet": {"network_id": network["id"],
                                                                "subnetpool_id": pool["id"], **extra}})

    made = [_ok(subnet(first), 201)["subnet"], _ok(subnet(second, prefixlen=26), 201)["subnet"],
            _ok(subnet(second, cidr="10.140.3.0/24"), 201)["subnet"]]
    _refused(subnet(first, prefixlen=23), 409, "no free /23")  # both /23s of the pool hold a block
    made.append(_ok(subnet(first), 201)["subnet"])
    assert [s["cidr"] for s in made] == ["10.140.0.0/24", "10.140.1.0/26", "10.140.3.0/24", "10.140.2.0/24"]
    assert made[0]["subnetpool_id"] == pool["id"] and made[0]["gateway_ip"] == "10.140.0.1"
    _refused(subnet(first, cidr="10.140.3.64/26"), 409, "already allocated")
    _refused(subnet(first, cidr="10.150.0.0/24"), 400, "subnet.cidr")
    _refused(subnet(first, prefixlen=28), 400, "subnet.prefixlen")
    _refused(subnet(first, prefixlen=22), 400, "subnet.prefixlen")
    _refused(_call(live, "POST", "/subnets", body={"subnet": {"network_id": first["id"], "subnetpool_id": "nope"}}),
             404, "Subnet pool 'nope'")
    _refused(_call(live, "DELETE", f"/subnetpools/{pool['id']}"), 409, "allocations")


def test_slaac_ports_take_their_eui64_address(live) -> None:
    net, v4 = _network(live, "slaac-net", "10.141.0.0/24")

    def subnet(cidr: str, mode: str | None) -> requests.Response:
        modes = {"ipv6_ra_mode": mode, "ipv6_address_mode": mode} if mode else {}
        return _call(live, "POST", "/subnets", body={"subnet": {"network_id": net["id"], "cidr": cidr,
                                                                "ip_version": 6, **modes}})

    slaac = _ok(subnet("fd00:141::/64", "slaac"), 201)["subnet"]
    stateful = _ok(subnet("fd00:142::/64", "dhcpv6-stateful"), 201)["subnet"]
    _refused(subnet("fd00:143::/80", "slaac"), 400, "requires the prefix to be /64")
    port = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"],
                                                            "mac_address": "fa:16:3e:12:34:56"}}), 201)["port"]
    # One address from each pooled subnet (IPv4, DHCPv6-stateful), and the EUI-64 one on the SLAAC subnet.
    assert port["fixed_ips"] == [{"subnet_id": v4["id"], "ip_address": "10.141.0.2"},
                                 {"subnet_id": stateful["id"], "ip_address": "fd00:142::2"},
                                 {"subnet_id": slaac["id"], "ip_address": "fd00:141::f816:3eff:fe12:3456"}]
    pinned = _ok(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": v4["id"]}], "mac_address": "fa:16:3e:00:00:02"}}), 201)["port"]
    assert [f["ip_address"] for f in pinned["fixed_ips"]] == ["10.141.0.3", "fd00:141::f816:3eff:fe00:2"]
    _refused(_call(live, "POST", "/ports", body={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": slaac["id"], "ip_address": "fd00:141::5"}]}}), 400, "port.fixed_ips[0].ip_address")

    # The SLAAC subnet goes from under its ports (their addresses on it with it); the stateful one does not.
    _refused(_call(live, "DELETE", f"/subnets/{stateful['id']}"), 409, "IP allocation")
    assert _call(live, "DELETE", f"/subnets/{slaac['id']}").status_code == 204
    shown = _ok(_call(live, "GET", f"/ports/{port['id']}"))["port"]
    assert [f["subnet_id"] for f in shown["fixed_ips"]] == [v4["id"], stateful["id"]]


def test_sorting_and_pages(live) -> None:
    names = ["page-c", "page-a", "page-d", "page-b"]
    made = [_ok(_call(live, "POST", "/security-groups", body={"security_group": {"name": n}}), 201)[
        "security_group"] for n in names]

    def listed(query: str) -> list[str]:
        groups = _ok(_call(live, "GET", f"/security-groups?{query}"))["security_groups"]
        return [g["name"] for g in groups if g["name"].startswith("page-")]

    assert listed("") == names  # creation order
    assert listed("sort_key=name&sort_dir=asc") == sorted(names)
    assert listed("sort_key=name&sort_dir=desc") == sorted(names, reverse=True)
    ids = {g["name"]: g["id"] for g in made}
    # Pages of one by name, as openstacksdk walks them: each marker is the last id of the page before.
    pages, marker = [], ""
    while True:
        page = _ok(_call(live, "GET", f"/security-groups?sort_key=name&sort_dir=asc&limit=2{marker}"))[
            "security_groups"]
        if not page:
            break
        pages.append([g["name"] for g in page])
        marker = f"&marker={page[-1]['id']}"
    assert [n for page in pages for n in page if n.startswith("page-")] == sorted(names)
    assert all(len(page) <= 2 for page in pages)
    before = f"sort_key=name&sort_dir=asc&limit=2&marker={ids['page-d']}&page_reverse=true"
    assert listed(before) == ["page-b", "page-c"]
    _refused(_call(live, "GET", "/security-groups?sort_key=name&sort_key=id&sort_dir=asc"), 400, "sort_dir")
    _refused(_call(live, "GET", "/security-groups?sort_key=colour&sort_dir=asc"), 400, "sort_key")
    _refused(_call(live, "GET", "/security-groups?sort_key=name&sort_dir=up"), 400, "sort_dir")
    _refused(_call(live, "GET", "/security-groups?limit=-1"), 400, "limit")
    _refused(_call(live, "GET", "/security-groups?marker=nope"), 404, "Marker 'nope'")
