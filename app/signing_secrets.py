"""Endpoint signing secrets: generation, validation, and encryption at rest.

A secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes, as Standard Webhooks
libraries expect. At rest it is sealed with AES-256-GCM under a key derived from
``HERALD_SECRET_KEY``, so a database dump alone does not reveal any secret. The endpoint id is
the associated data of the seal: a sealed secret copied into another endpoint's row does not
open, so write access to the database cannot make one endpoint sign with another's secret.
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
# Version 1 seals (no associated data) predate the binding; they still open, so secrets
# stored by earlier releases keep working, and every new seal is version 2.
_UNBOUND_SEAL = b"\x01"
_BOUND_SEAL = b"\x02"
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

    def seal(self, plaintext: str, *, associated: str) -> bytes:
        """Encrypt ``plaintext`` bound to ``associated`` (the id of the endpoint it signs for)."""
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return _BOUND_SEAL + nonce + ciphertext

    def open(self, sealed: bytes, *, associated: str) -> str:
        version = sealed[:1]
        if version not in (_BOUND_SEAL, _UNBOUND_SEAL):
            raise ValueError("unknown secret seal version")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        data = associated.encode() if version == _BOUND_SEAL else None
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], data).decode()
        except InvalidTag as error:
            raise ValueError(
                "secret cannot be opened: was HERALD_SECRET_KEY changed, or was the sealed "
                f"secret moved from another endpoint than {associated}?"
            ) from error
