"""SSH public keys for keypairs: validation, Nova's fingerprint, and generation when none is given."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.errors import BadRequest

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: the MD5 of the key blob, as colon-separated hex; BadRequest if malformed."""
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES or "\n" in public_key.strip():
        raise BadRequest("keypair.public_key", "is not a single OpenSSH public key line (TYPE BASE64 [COMMENT])")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise BadRequest("keypair.public_key", "the key is not valid base64") from None
    if not blob.startswith(len(parts[0]).to_bytes(4, "big") + parts[0].encode()):
        raise BadRequest("keypair.public_key", f"the key blob is not a {parts[0]} key")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate() -> tuple[str, str]:
    """A new ed25519 key pair: (OpenSSH public key line, OpenSSH private key PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public, private
