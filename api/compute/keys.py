"""Keypair keys: SSH public keys (validation, Nova's fingerprint, generation when none is given) and X.509
certificates (Nova's x509 type, 2.2)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

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


def x509_fingerprint(certificate: str) -> str:
    """Nova's fingerprint of an X.509 keypair: the SHA-1 of the certificate (DER), as colon-separated hex."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise BadRequest("keypair.public_key", "is not a PEM X.509 certificate") from None
    digest = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 (Nova's format, an identifier only)
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate_x509(user_id: str) -> tuple[str, str]:
    """A new self-signed certificate and its RSA key, as Nova makes an x509 keypair: (certificate PEM,
    private key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id[:64] or "nova")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private
