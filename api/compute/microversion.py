"""Nova's microversions: the range this API serves and how a request names one (api/microversion.py parses
the headers and answers them).

`OpenStack-API-Version: compute 2.N` or the older `X-OpenStack-Nova-API-Version: 2.N`; no header means 2.1.
Every path below /compute/v2.1, and its version document, is versioned; the version settled is
`req.context.compute_version`.
"""

from __future__ import annotations

import falcon

from api.microversion import Microversions, Version

NOVA = Microversions(service="compute", min=Version(2, 1), max=Version(2, 79), context_attr="compute_version",
                     prefix="/compute/v2.1", prefix_versioned=True, legacy_header="X-OpenStack-Nova-API-Version")
MIN = NOVA.min
MAX = NOVA.max


def version_of(req: falcon.Request) -> Version:
    """The compute microversion settled for this request (2.1 outside the versioned API)."""
    return NOVA.version_of(req)
