"""config.yaml's `hypervisors:` list and the `libvirt_uri:` shorthand (api/config_hypervisors.py): what is accepted,
and each bad input refused with an error naming config.yaml and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.config import parse_config
from api.config_hypervisors import CPU_ALLOCATION_RATIO, HOSTNAME, MAX_HYPERVISORS, RAM_ALLOCATION_RATIO
from provisioner.errors import InputError

WHERE = "/root/api/config.yaml"


def _parse(**data: Any) -> Any:
    return parse_config(data, WHERE).hypervisors


def test_without_either_key_one_simulator_named_after_this_host() -> None:
    (only,) = _parse()
    assert (only.name, only.uri, only.zone, only.listed) == (HOSTNAME, "simulator", "nova", False)


def test_libvirt_uri_is_the_one_hypervisor_shorthand() -> None:
    (only,) = _parse(libvirt_uri="qemu:///system")
    assert (only.uri, only.listed) == ("qemu:///system", False)


def test_a_list_with_overrides_defaults_and_nova_ratios(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAA\n")
    first, second, third = _parse(hypervisors=[
        {"name": "a", "uri": "simulator:a", "memory_mb": 4096, "cpus": 2, "disk_gb": 50},
        {"name": "b", "uri": "qemu+ssh://virt@10.0.0.2/system?keyfile=/k", "zone": "east",
         "known_hosts": str(known), "ram_allocation_ratio": 1.5, "cpu_allocation_ratio": 16},
        {"name": "c", "uri": "simulator"}])
    assert (first.memory_mb, first.cpus, first.disk_gb, first.zone, first.simulator_name) == (4096, 2, 50, "nova", "a")
    assert (first.ram_allocation_ratio, first.cpu_allocation_ratio) == (RAM_ALLOCATION_RATIO, CPU_ALLOCATION_RATIO)
    assert (RAM_ALLOCATION_RATIO, CPU_ALLOCATION_RATIO) == (1.0, 4.0), "Nova's current initial_*_allocation_ratio"
    assert (second.zone, second.known_hosts, second.ram_allocation_ratio, second.cpu_allocation_ratio) == (
        "east", known, 1.5, 16.0)
    assert third.memory_mb is None and third.listed


@pytest.mark.parametrize(("data", "where", "says"), [
    ({"hypervisors": []}, WHERE, "non-empty list"),
    ({"hypervisors": "simulator"}, WHERE, "non-empty list"),
    ({"hypervisors": [{"name": "a", "uri": "simulator"}], "libvirt_uri": "simulator"}, WHERE, "give one"),
    ({"hypervisors": [{"name": f"h{i}", "uri": f"simulator:h{i}"} for i in range(MAX_HYPERVISORS + 1)]},
     WHERE, f"at most {MAX_HYPERVISORS}"),
    ({"hypervisors": ["simulator"]}, f"{WHERE}: hypervisors[0]", "must be a mapping"),
    ({"hypervisors": [{"uri": "simulator"}]}, f"{WHERE}: hypervisors[0]", "key 'name'"),
    ({"hypervisors": [{"name": "a b", "uri": "simulator"}]}, f"{WHERE}: hypervisors[0]", "key 'name'"),
    ({"hypervisors": [{"name": "a"}]}, f"{WHERE}: hypervisors[0]", "key 'uri'"),
    ({"hypervisors": [{"name": "a", "uri": "somewhere"}]}, f"{WHERE}: hypervisors[0]", "not a libvirt URI"),
    ({"hypervisors": [{"name": "a", "uri": "simulator:../x"}]}, f"{WHERE}: hypervisors[0]", "simulator:NAME"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "zone": ""}]}, f"{WHERE}: hypervisors[0]", "key 'zone'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "zone": "a:b"}]}, f"{WHERE}: hypervisors[0]", "key 'zone'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "memory_mb": 0}]}, f"{WHERE}: hypervisors[0]",
     "key 'memory_mb'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "cpus": "8"}]}, f"{WHERE}: hypervisors[0]", "key 'cpus'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "disk_gb": True}]}, f"{WHERE}: hypervisors[0]",
     "key 'disk_gb'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "ram_allocation_ratio": 0}]}, f"{WHERE}: hypervisors[0]",
     "key 'ram_allocation_ratio'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "cpu_allocation_ratio": "x"}]}, f"{WHERE}: hypervisors[0]",
     "key 'cpu_allocation_ratio'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "colour": "red"}]}, f"{WHERE}: hypervisors[0]", "colour"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "known_hosts": "/etc/hostname"}]},
     f"{WHERE}: hypervisors[0]", "only for an ssh URI"),
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system", "known_hosts": "rel/path"}]},
     f"{WHERE}: hypervisors[0]", "absolute path"),
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system", "known_hosts": "/no/such/file"}]},
     f"{WHERE}: hypervisors[0]", "is not a file"),
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system?command=/bin/ssh", "known_hosts": "/etc/hostname"}]},
     f"{WHERE}: hypervisors[0]", "'command'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator:a"}, {"name": "a", "uri": "simulator:b"}]},
     f"{WHERE}: hypervisors[1]", "key 'name': 'a' is listed twice"),
    ({"hypervisors": [{"name": "a", "uri": "simulator"}, {"name": "b", "uri": "simulator"}]},
     f"{WHERE}: hypervisors[1]", "key 'uri'"),
    ({"libvirt_uri": ""}, WHERE, "key 'libvirt_uri'"),
])
def test_bad_input_names_the_file_and_key(data: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_config(data, WHERE)
    assert caught.value.where == where
    assert says in caught.value.message
