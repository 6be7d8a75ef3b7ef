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


def catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    """The token's catalog, with the three interfaces at the same URL."""
    return [{
        "type": kind, "name": name, "id": stable_id("service", kind),
        "endpoints": [{"id": stable_id("endpoint", f"{kind}/{interface}"), "interface": interface,
                       "region": region, "region_id": region, "url": base_url + path}
                      for interface in INTERFACES],
    } for kind, name, path in SERVICES]
