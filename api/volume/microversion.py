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
UPLOAD_VISIBILITY = Version(3, 1)  # os-volume_upload_image takes visibility and protected
MESSAGES = Version(3, 3)  # GET /messages, GET and DELETE /messages/{id}
GROUP_TYPES = Version(3, 11)  # /group_types and their group specs
VOLUME_SUMMARY = Version(3, 12)  # GET /volumes/summary
GROUPS = Version(3, 13)  # /groups; a volume shows its group_id
GROUP_FROM_SOURCE = Version(3, 14)  # POST /groups/action create-from-src; /group_snapshots
GROUP_SNAPSHOT_RESET_STATUS = Version(3, 19)  # a group snapshot's reset_status action
GROUP_RESET_STATUS = Version(3, 20)  # a group's reset_status action
SUMMARY_METADATA = Version(3, 36)  # the summary lists the volumes' metadata
GROUP_REPLICATION = Version(3, 38)  # a group shows replication_status
EXTEND_IN_USE = Version(3, 42)  # os-extend of an attached volume
BACKEND_STATE = Version(3, 49)  # os-services shows the volume service's backend_state
TRANSFERS = Version(3, 55)  # /volume-transfers, and no_snapshots
TRANSFER_PROJECTS = Version(3, 57)  # a transfer shows its source and destination projects and accepted


def version_of(req: falcon.Request) -> Version:
    """The volume microversion settled for this request (3.0 outside the versioned API)."""
    return CINDER.version_of(req)
