"""config.yaml's `hypervisors:` list and the `libvirt_uri:` shorthand (api/config_hypervisors.py): what is accepted,
each bad input refused with an error naming config.yaml and the key, and the URI each entry is opened with
(api/compute/placement.py resolve: simulator node files, the ssh wrapper pinning host keys)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from api.compute.placement import Hosts, HypervisorDown, NoValidHost
from api.config import Flavor, parse_config
from api.config_hypervisors import CPU_ALLOCATION_RATIO, HOSTNAME, MAX_HYPERVISORS, RAM_ALLOCATION_RATIO
from provisioner.errors import InputError
from provisioner.layout import Layout
from provisioner.shared import shared_dir
from provisioner.spec.load import auto_domain_type

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
         "known_hosts": str(known), "ram_allocation_ratio": 1.5, "cpu_allocation_ratio": 16, "domain_type": "qemu"},
        {"name": "c", "uri": "simulator"}])
    assert (first.memory_mb, first.cpus, first.disk_gb, first.zone, first.simulator_name) == (4096, 2, 50, "nova", "a")
    assert (first.ram_allocation_ratio, first.cpu_allocation_ratio) == (RAM_ALLOCATION_RATIO, CPU_ALLOCATION_RATIO)
    assert (RAM_ALLOCATION_RATIO, CPU_ALLOCATION_RATIO) == (1.0, 4.0), "Nova's current initial_*_allocation_ratio"
    assert (second.zone, second.known_hosts, second.ram_allocation_ratio, second.cpu_allocation_ratio) == (
        "east", known, 1.5, 16.0)
    assert third.memory_mb is None and third.listed
    assert (first.domain_type, second.domain_type) == ("auto", "qemu")


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
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system", "known_hosts": '/etc/"hostname'}]},
     f"{WHERE}: hypervisors[0]", "absolute path"),
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system", "known_hosts": "/no/such/file"}]},
     f"{WHERE}: hypervisors[0]", "is not a file"),
    ({"hypervisors": [{"name": "a", "uri": "qemu+ssh://h/system?command=/bin/ssh", "known_hosts": "/etc/hostname"}]},
     f"{WHERE}: hypervisors[0]", "'command'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator:a"}, {"name": "a", "uri": "simulator:b"}]},
     f"{WHERE}: hypervisors[1]", "key 'name': 'a' is listed twice"),
    ({"hypervisors": [{"name": "a", "uri": "simulator"}, {"name": "b", "uri": "simulator"}]},
     f"{WHERE}: hypervisors[1]", "key 'uri'"),
    ({"hypervisors": [{"name": "a", "uri": "simulator", "domain_type": "xen"}]}, f"{WHERE}: hypervisors[0]",
     "key 'domain_type': 'xen'"),
    ({"libvirt_uri": ""}, WHERE, "key 'libvirt_uri'"),
])
def test_bad_input_names_the_file_and_key(data: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_config(data, WHERE)
    assert caught.value.where == where
    assert says in caught.value.message


def _hosts(tmp_path: Path, *entries: dict[str, Any]) -> Hosts:
    hosts = Hosts(parse_config({"hypervisors": list(entries)}, WHERE).hypervisors, Layout(tmp_path / "root"))
    hosts.prepare()
    return hosts


def test_an_ssh_uri_runs_ssh_through_its_wrapper(tmp_path: Path) -> None:
    pinned, unpinned, own, tcp = _hosts(
        tmp_path,
        {"name": "a", "uri": "qemu+ssh://virt@10.0.0.2/system?keyfile=/k", "known_hosts": "/etc/hostname"},
        {"name": "b", "uri": "qemu+ssh://virt@10.0.0.3/system"},
        {"name": "c", "uri": "qemu+ssh://virt@10.0.0.4/system?command=/usr/local/bin/ssh"},
        {"name": "d", "uri": "qemu+tcp://10.0.0.5/system"}).hosts
    wrapper = tmp_path / "root" / "hypervisors" / "a" / "ssh"
    assert pinned.uri == f"qemu+ssh://virt@10.0.0.2/system?keyfile=/k&command={wrapper}"
    text = wrapper.read_text()
    assert "StrictHostKeyChecking=yes" in text and 'UserKnownHostsFile="/etc/hostname"' in text
    assert "GlobalKnownHostsFile=/dev/null" in text and "ConnectTimeout=" in text and "BatchMode=yes" in text
    assert wrapper.stat().st_mode & 0o777 == 0o700
    unpinned_text = (tmp_path / "root" / "hypervisors" / "b" / "ssh").read_text()
    assert "StrictHostKeyChecking=yes" in unpinned_text and "UserKnownHostsFile" not in unpinned_text, \
        "without known_hosts: the operator's own, still strict"
    assert own.uri == "qemu+ssh://virt@10.0.0.4/system?command=/usr/local/bin/ssh", "the operator's command is kept"
    assert tcp.uri == "qemu+tcp://10.0.0.5/system" and not (tmp_path / "root" / "hypervisors" / "d").exists()


def test_simulated_hypervisors_get_their_own_node_files_and_shared_workspaces(tmp_path: Path) -> None:
    main, named = _hosts(tmp_path, {"name": "m", "uri": "simulator"}, {"name": "n", "uri": "simulator:n"}).hosts
    layout = Layout(tmp_path / "root")
    assert main.uri == layout.simulator_uri
    assert named.uri == layout.named_simulator_uri("n") and (layout.simulators / "n" / "node.xml").is_file()
    assert shared_dir(main.uri, layout) == layout.shared / "simulator"
    assert shared_dir(named.uri, layout) == layout.shared / "simulator-n"
    assert auto_domain_type(named.uri, layout) == "qemu", "nothing runs on a simulated hypervisor"


def test_a_hypervisor_that_accepts_but_never_answers_is_down_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        hosts = Hosts(parse_config({"hypervisors": [{"name": "mute", "uri": f"qemu+tcp://127.0.0.1:{port}/system",
                                                     "memory_mb": 1024, "cpus": 1}]}, WHERE).hypervisors,
                      Layout(tmp_path / "root"), probe_timeout=0.5)
        (mute,) = hosts.hosts
        assert not hosts.is_up(mute)
        with pytest.raises(HypervisorDown, match="hypervisor mute is unreachable: libvirt did not answer"):
            hosts.check(mute)
        with pytest.raises(NoValidHost, match="mute is unreachable"):
            hosts.choose(Flavor(id="1", name="m1.tiny", ram=512, vcpus=1, disk=0), None, list, [])


def test_silent_hypervisors_are_asked_together(tmp_path: Path) -> None:
    silent = [socket.socket() for _ in range(3)]
    try:
        for sock in silent:
            sock.bind(("127.0.0.1", 0))
            sock.listen(4)
        hosts = Hosts(parse_config({"hypervisors": [
            {"name": f"mute{i}", "uri": f"qemu+tcp://127.0.0.1:{sock.getsockname()[1]}/system"}
            for i, sock in enumerate(silent)]}, WHERE).hypervisors, Layout(tmp_path / "root"), probe_timeout=0.5)
        asked = []
        probe = hosts._probe
        hosts._probe = lambda host: asked.append(threading.current_thread().name) or probe(host)  # type: ignore
        hosts.survey(hosts.hosts)
        assert len(set(asked)) == 3, "each from a thread of its own, at once"
        assert not any(hosts.is_up(h) for h in hosts.hosts), "the answers (none) are kept: not asked again"
        assert len(asked) == 3
    finally:
        for sock in silent:
            sock.close()
