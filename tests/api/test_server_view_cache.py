"""api/compute/view_cache.py: a server's view text is reused only for the same record and equal inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from api.compute.models import Server
from api.compute.view_cache import ServerViewCache

SERVER = Server(id="s1", name="vm", project_id="p", user_id="u", domain="srv-s1", flavor_id="1", image_id="i",
                ports=({"id": "port", "network_id": "net", "mac": "52:54:00:00:00:01", "ips": ["10.0.0.5"]},),
                metadata={"role": "web"})


class Views:
    """A view function that counts its calls and shows what it was given."""

    def __init__(self) -> None:
        self.calls = 0

    def of(self, server: Server, inputs: Any):
        def view() -> dict[str, Any]:
            self.calls += 1
            return {"name": server.name, "metadata": server.metadata, "inputs": repr(inputs)}
        return view


def test_the_same_record_and_inputs_reuse_the_text() -> None:
    cache, views = ServerViewCache(), Views()
    inputs = ("http://h", 47, False)
    first = cache.text(SERVER, inputs, views.of(SERVER, inputs))
    assert json.loads(first)["name"] == "vm"
    assert cache.text(SERVER, inputs, views.of(SERVER, inputs)) == first
    # An equal record loaded again (another process's write bumped the counter, or a shared database).
    again = replace(SERVER, metadata=dict(SERVER.metadata))
    assert again is not SERVER and cache.text(again, inputs, views.of(again, inputs)) == first
    assert views.calls == 1


def test_a_changed_record_or_input_makes_a_new_view() -> None:
    cache, views = ServerViewCache(), Views()
    inputs = ("http://h", 47, False)
    cache.text(SERVER, inputs, views.of(SERVER, inputs))
    renamed = replace(SERVER, name="renamed")
    assert json.loads(cache.text(renamed, inputs, views.of(renamed, inputs)))["name"] == "renamed"
    retagged = replace(renamed, metadata={"role": "db"})
    assert json.loads(cache.text(retagged, inputs, views.of(retagged, inputs)))["metadata"] == {"role": "db"}
    for other in (("http://other", 47, False), ("http://h", 21, False), ("http://h", 47, True)):
        assert json.loads(cache.text(retagged, other, views.of(retagged, other)))["inputs"] == repr(other)
    assert views.calls == 6


def test_the_cache_starts_over_past_its_bound() -> None:
    cache, views = ServerViewCache(limit=3), Views()
    servers = [replace(SERVER, id=f"s{i}") for i in range(4)]
    for server in servers:
        cache.text(server, (), views.of(server, ()))
    cache.text(servers[0], (), views.of(servers[0], ()))  # dropped when the 4th came in
    cache.text(servers[3], (), views.of(servers[3], ()))  # kept
    assert views.calls == 5
