"""The token signing key (api/identity/tokens.py load_key): every worker process starting at once ends with the
same whole key, and a damaged key file stops the start instead of signing with what is left of it."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from api.identity.tokens import KEY_BYTES, load_key
from provisioner.errors import InputError

WORKERS = 6
ROUNDS = 40


def _load(path: Path, start: multiprocessing.synchronize.Barrier, keys: multiprocessing.Queue) -> None:
    start.wait()
    keys.put(load_key(path))


def test_worker_processes_starting_together_share_one_whole_key(tmp_path: Path) -> None:
    # Many rounds: each round is a fresh key file that WORKERS processes create at the same moment.
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        path = tmp_path / f"round-{round_}" / "token.key"
        start, keys = context.Barrier(WORKERS), context.Queue()
        workers = [context.Process(target=_load, args=(path, start, keys)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        seen = [keys.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
        assert {len(key) for key in seen} == {KEY_BYTES}, f"round {round_}: a worker read a partial key"
        assert len(set(seen)) == 1, f"round {round_}: the workers hold different keys"
        assert path.read_bytes() == seen[0]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert [p.name for p in path.parent.iterdir()] == ["token.key"], "a staged key file was left behind"


@pytest.mark.parametrize("content", [b"", b"x" * (KEY_BYTES - 1), b"x" * (KEY_BYTES + 1)])
def test_a_damaged_key_file_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "api" / "token.key"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_key(path)
    assert str(path) in str(caught.value) and f"{len(content)} bytes" in str(caught.value)
    assert path.read_bytes() == content, "the damaged file is left for the operator"
