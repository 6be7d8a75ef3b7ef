"""The service catalog: every service under the same host, at the URL the client used."""

from __future__ import annotations

from typing import Any

from api.config import stable_id

# (type, name, path under the host): the catalog URL of each service.
SERVICES = (
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("volumev3", "cinderv3", "/volume/v3"),
    ("block-storage", "cinder", "/volume/v3"),
)
INTERFACES = ("public", "internal", "admin")
# The ids depend on the service and interface only: derived once (24 uuid5 per token issue were a third of its
# time besides the password hash).
SERVICE_IDS = {kind: stable_id("service", kind) for kind, _, _ in SERVICES}
ENDPOINT_IDS = {(kind, interface): stable_id("endpoint", f"{kind}/{interface}")
                for kind, _, _ in SERVICES for interface in INTERFACES}


def catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    """The token's catalog, with the three interfaces at the same URL."""
    return [{
        "type": kind, "name": name, "id": SERVICE_IDS[kind],
        "endpoints": [{"id": ENDPOINT_IDS[kind, interface], "interface": interface,
                       "region": region, "region_id": region, "url": base_url + path}
                      for interface in INTERFACES],
    } for kind, name, path in SERVICES]
