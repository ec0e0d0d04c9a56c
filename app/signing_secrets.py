"""Endpoint signing secrets: generation, validation, and encryption at rest.

A secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes, as Standard Webhooks
libraries expect. At rest it is sealed with AES-256-GCM under a key derived from
``HERALD_SECRET_KEY``, so a database dump alone does not reveal any secret.
"""

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_GENERATED_SECRET_BYTES = 32
_SEAL_VERSION = b"\x01"
_NONCE_BYTES = 12


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(_GENERATED_SECRET_BYTES)).decode()


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a usable signing secret, or None when it is."""
    if not secret.startswith(SECRET_PREFIX):
        return f"must start with '{SECRET_PREFIX}'"
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return f"must be '{SECRET_PREFIX}' followed by standard base64"
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        return f"must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(raw)}"
    return None


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


class SecretBox:
    """Seals and opens secrets with a key derived from the configured secret key."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"herald endpoint secrets v1"
        ).derive(secret_key.encode())
        self._aead = AESGCM(derived)

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def open(self, sealed: bytes) -> str:
        if sealed[:1] != _SEAL_VERSION:
            raise ValueError("unknown secret seal version")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], None).decode()
        except InvalidTag as error:
            raise ValueError("secret cannot be opened: was HERALD_SECRET_KEY changed?") from error
