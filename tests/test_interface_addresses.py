"""Interface addresses on libvirt's test driver: a NIC on a network without an address must not crash the
asking process (libvirt 9's test driver dereferences the missing <ip>: SIGSEGV, which took the API down).

Each question runs in a child process, so the old behaviour shows as a failed test, not a dead pytest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NODE = """<node>
  <network><name>bare</name><bridge name="virbr9"/></network>
  <network><name>lan</name><bridge name="virbr8"/>
    <ip address="10.9.0.1" netmask="255.255.255.0"><dhcp><range start="10.9.0.10" end="10.9.0.20"/></dhcp></ip>
  </network>
  <domain type="test"><name>both</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <interface type="network"><mac address="52:54:00:00:00:01"/><source network="lan"/></interface>
    <interface type="network"><mac address="52:54:00:00:00:02"/><source network="bare"/></interface>
  </devices></domain>
  <domain type="test"><name>lan-only</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <interface type="network"><mac address="52:54:00:00:00:03"/><source network="lan"/></interface>
  </devices></domain>
  <domain type="test"><name>gone-net</name><memory>65536</memory><os><type>hvm</type></os><devices>
    <interface type="network"><mac address="52:54:00:00:00:04"/><source network="lan"/></interface>
  </devices></domain>
</node>
"""

ASK = """
import json, sys, libvirt
from provisioner.interface_addresses import interface_addresses
conn = libvirt.open("test://" + sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
if sys.argv[2] == "gone-net":
    conn.networkLookupByName("lan").destroy()
    conn.networkLookupByName("lan").undefine()
found = interface_addresses(dom, libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
print(json.dumps({iface["hwaddr"]: [a["addr"] for a in iface["addrs"]] for iface in found.values()}))
"""


def _ask(node: Path, domain: str) -> dict[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", ASK, str(node), domain], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"asking crashed the process ({proc.returncode}): {proc.stderr[-500:]}"
    return json.loads(proc.stdout)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "node.xml"
    path.write_text(NODE)
    return path


def test_nic_on_a_network_without_address_is_answered_empty(node: Path) -> None:
    assert _ask(node, "both") == {}


def test_nic_on_a_network_that_is_gone_is_answered_empty(node: Path) -> None:
    assert _ask(node, "gone-net") == {}


def test_nics_on_addressed_networks_still_report(node: Path) -> None:
    found = _ask(node, "lan-only")
    assert list(found) == ["52:54:00:00:00:03"]
    assert found["52:54:00:00:00:03"][0].startswith("10.9.0.")
