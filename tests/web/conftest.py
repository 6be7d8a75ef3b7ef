"""The web tests reuse the API tests' live-server fixtures (tests/api/apitest.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
