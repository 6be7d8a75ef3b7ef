"""Cinder's microversions: the range this API serves and the versions whose behaviour it implements
(api/microversion.py parses the headers and answers them).

`OpenStack-API-Version: volume 3.N` (Cinder has no legacy header); no header means 3.0. The paths below
/volume/v3 are versioned, its version document is not, as in Cinder; the version settled is
`req.context.volume_version`.
"""

from __future__ import annotations

import falcon

from api.microversion import Microversions, Version

CINDER = Microversions(service="volume", min=Version(3, 0),
                       max=Version(3, 60),  # 3.60: volume list filters on created_at/updated_at (Yoga's goes to 3.70)
                       context_attr="volume_version", prefix="/volume/v3", prefix_versioned=False)
MIN = CINDER.min
MAX = CINDER.max
# The versions whose behaviour this API implements, for the code that asks.
MESSAGES = Version(3, 3)  # GET /messages, GET and DELETE /messages/{id}
VOLUME_SUMMARY = Version(3, 12)  # GET /volumes/summary
SUMMARY_METADATA = Version(3, 36)  # the summary lists the volumes' metadata
EXTEND_IN_USE = Version(3, 42)  # os-extend of an attached volume


def version_of(req: falcon.Request) -> Version:
    """The volume microversion settled for this request (3.0 outside the versioned API)."""
    return CINDER.version_of(req)
