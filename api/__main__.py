"""`python -m api …`: see api.cli."""

import sys

from api.cli import main

sys.exit(main())
