"""Telling a disk image's format from its first bytes, never from its file name."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from provisioner.images.errors import UnsupportedFormat

FORMATS = ("qcow2", "raw")
# Enough to reach the ISO 9660 volume descriptors (sectors 16 to 18).
HEAD_SIZE = 64 * 1024

QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_HEADER = struct.Struct(">4sIQIIQI")  # magic, version, backing offset/size, cluster bits, size, crypt
_QCOW2_EXTERNAL_DATA_FILE = 1 << 2  # incompatible feature bit (qcow2 v3)

# Formats qemu could read but that are not what we serve: refused rather than mistaken for raw.
_REFUSED = (
    (0, b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
    (0, b"\xfd7zXZ\x00", "xz-compressed data (decompress it first)"),
    (0, b"BZh", "bzip2-compressed data (decompress it first)"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed data (decompress it first)"),
    (0, b"PK\x03\x04", "a zip archive (extract the image first)"),
    (257, b"ustar", "a tar archive (extract the image first)"),
    (0, b"KDMV", "a VMDK image (convert it: qemu-img convert -O qcow2)"),
    (0, b"# Disk DescriptorFile", "a VMDK descriptor (convert the image: qemu-img convert -O qcow2)"),
    (0, b"vhdxfile", "a VHDX image (convert it: qemu-img convert -O qcow2)"),
    (0, b"conectix", "a VHD image (convert it: qemu-img convert -O qcow2)"),
    (0x40, b"\x7f\x10\xda\xbe", "a VDI image (convert it: qemu-img convert -O qcow2)"),
    (0, b"QED\x00", "a QED image (convert it: qemu-img convert -O qcow2)"),
    (0x8001, b"CD001", "an ISO 9660 image, not a disk image"),
    (0x8801, b"CD001", "an ISO 9660 image, not a disk image"),
    (0x9001, b"CD001", "an ISO 9660 image, not a disk image"),
)


@dataclass(frozen=True)
class FormatInfo:
    """What the header says: the format and, for qcow2, the guest-visible size."""

    format: str
    virtual_size: int | None = None


def detect(name: str, head: bytes) -> FormatInfo:
    """Identify `head` (the first HEAD_SIZE bytes, or all of a shorter image).

    Raises UnsupportedFormat for empty content, a recognised foreign format,
    or a qcow2 image that depends on another file (backing or data file) or is
    encrypted: a base image must stand alone.
    """
    if not head:
        raise UnsupportedFormat(name, "unsupported format: the image is empty")
    if head.startswith(QCOW2_MAGIC):
        return FormatInfo("qcow2", _qcow2_virtual_size(name, head))
    for offset, magic, what in _REFUSED:
        if head[offset:offset + len(magic)] == magic:
            raise UnsupportedFormat(name, f"unknown/unsupported format: {what}; "
                                          f"only qcow2 and raw disk images can be imported")
    return FormatInfo("raw")


def _qcow2_virtual_size(name: str, head: bytes) -> int:
    if len(head) < 104:
        raise UnsupportedFormat(name, "unsupported format: truncated qcow2 header")
    _, version, backing_offset, _, _, size, crypt = _QCOW2_HEADER.unpack_from(head)
    if version not in (2, 3):
        raise UnsupportedFormat(name, f"unsupported format: qcow2 version {version}")
    if backing_offset:
        raise UnsupportedFormat(name, "qcow2 image has a backing file; import a standalone image "
                                      "(qemu-img convert -O qcow2 IN OUT)")
    if crypt:
        raise UnsupportedFormat(name, "qcow2 image is encrypted; import an unencrypted image")
    if version == 3 and struct.unpack_from(">Q", head, 72)[0] & _QCOW2_EXTERNAL_DATA_FILE:
        raise UnsupportedFormat(name, "qcow2 image keeps its data in an external file; "
                                      "import a standalone image")
    return size
