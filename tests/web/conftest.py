"""The web tests reuse the API tests' live-server fixtures (tests/api/apitest.py); `site` is one populated server
per test module."""

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api.accounts import set_user  # noqa: E402
from api.config import config_path  # noqa: E402
from apitest import PASSWORD, qcow2_file, serve_root  # noqa: E402,F401 (fixture)
from .webtest import Site, populate  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, qcow2_file: Path) -> Iterator[Site]:  # noqa: F811
    """A live server over a new root with alice's ACTIVE server (project demo), until the module ends."""
    with serve_root(tmp_path_factory.mktemp("web") / "root") as live:
        # carol: for the throttle test (her locks must not lock the others out)
        set_user(config_path(live.layout), "carol", PASSWORD, "demo", ["member"])
        yield populate(live, qcow2_file)
