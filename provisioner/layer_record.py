"""layer.json: what marks a workspace as a layered domain, and where it is layered."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from provisioner.workspace import write_atomic

FILE_NAME = "layer.json"


@dataclass(frozen=True)
class LayerRecord:
    """A layered domain's target.

    `on` is what the operator named (depends_on's OTHER, or HOST:PORT for
    --existing); `machine` owns the VM (the root of a depends_on chain, or
    HOST:PORT); `digest` covers what the layer job applies, so a change queues
    the job again.
    """

    on: str
    machine: str
    existing: bool
    digest: str


def read_layer(workspace: Path) -> LayerRecord | None:
    """The workspace's layer record, None for a domain with a VM of its own (or none yet)."""
    path = workspace / FILE_NAME
    if not path.is_file():
        return None
    return LayerRecord(**json.loads(path.read_text()))


def write_layer(workspace: Path, record: LayerRecord) -> bool:
    """Write the record; False if it was already there unchanged."""
    text = json.dumps(asdict(record), indent=2, sort_keys=True) + "\n"
    return write_atomic(workspace / FILE_NAME, text.encode())
