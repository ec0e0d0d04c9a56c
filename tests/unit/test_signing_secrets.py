"""app.signing_secrets: whsec_ secrets and their sealing at rest."""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
import standardwebhooks
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.signing_secrets import (
    MAX_SECRET_BYTES,
    MIN_SECRET_BYTES,
    SECRET_PREFIX,
    SecretBox,
    generate_secret,
    secret_bytes,
    secret_problem,
)

KEY = "k" * 40
EP = "ep_01KA0000000000000000000000"
OTHER_EP = "ep_01KA0000000000000000000001"


def whsec(raw: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def test_generated_secret_is_valid_and_fresh() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert secret_problem(secret) is None
    assert len(secret_bytes(secret)) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize(
    ("size", "valid"),
    [(0, False), (23, False), (24, True), (32, True), (64, True), (65, False)],
)
def test_secret_size_limits(size: int, valid: bool) -> None:
    problem = secret_problem(whsec(b"\x5a" * size))
    if valid:
        assert problem is None
    else:
        assert problem == f"must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {size}"


@pytest.mark.parametrize(
    "secret",
    [
        "",
        base64.b64encode(b"x" * 32).decode(),
        "WHSEC_" + base64.b64encode(b"x" * 32).decode(),
        "whsk_" + base64.b64encode(b"x" * 32).decode(),
        " whsec_" + base64.b64encode(b"x" * 32).decode(),
    ],
)
def test_secret_needs_the_prefix(secret: str) -> None:
    assert secret_problem(secret) == "must start with 'whsec_'"


@pytest.mark.parametrize(
    "body",
    [
        "not base64!",
        "abc",  # bad padding
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # '-' and '_' are not standard
        base64.b64encode(b"x" * 32).decode() + "\n",
    ],
)
def test_secret_needs_standard_base64(body: str) -> None:
    assert secret_problem(SECRET_PREFIX + body) == "must be 'whsec_' followed by standard base64"


def test_secret_bytes_is_the_decoded_key() -> None:
    raw = bytes(range(40))
    assert secret_bytes(whsec(raw)) == raw


def test_secret_box_round_trip() -> None:
    secret = generate_secret()
    box = SecretBox(KEY)
    assert box.open(box.seal(secret, associated=EP), associated=EP) == secret
    assert SecretBox(KEY).open(box.seal(secret, associated=EP), associated=EP) == secret


def test_sealing_is_randomised_and_hides_the_plaintext() -> None:
    secret = generate_secret()
    box = SecretBox(KEY)
    first, second = box.seal(secret, associated=EP), box.seal(secret, associated=EP)
    assert first != second
    for sealed in (first, second):
        assert secret.encode() not in sealed
        assert secret_bytes(secret) not in sealed
        assert secret.removeprefix(SECRET_PREFIX).encode() not in sealed


def test_a_box_with_another_key_cannot_open() -> None:
    sealed = SecretBox(KEY).seal(generate_secret(), associated=EP)
    with pytest.raises(ValueError, match="HERALD_SECRET_KEY"):
        SecretBox(KEY + "x").open(sealed, associated=EP)


def test_tampered_ciphertext_is_rejected() -> None:
    box = SecretBox(KEY)
    sealed = bytearray(box.seal(generate_secret(), associated=EP))
    sealed[-1] ^= 0x01
    with pytest.raises(ValueError, match="cannot be opened"):
        box.open(bytes(sealed), associated=EP)


def test_a_secret_sealed_for_one_endpoint_does_not_open_for_another() -> None:
    box = SecretBox(KEY)
    sealed = box.seal(generate_secret(), associated=EP)
    with pytest.raises(ValueError, match="another endpoint"):
        box.open(sealed, associated=OTHER_EP)


def test_unbound_seals_of_earlier_releases_still_open() -> None:
    secret = generate_secret()
    nonce = b"n" * 12
    legacy = b"\x01" + nonce + AESGCM(_derived(KEY)).encrypt(nonce, secret.encode(), None)
    assert SecretBox(KEY).open(legacy, associated=EP) == secret


def test_a_bound_seal_cannot_be_downgraded_to_an_unbound_one() -> None:
    sealed = SecretBox(KEY).seal(generate_secret(), associated=EP)
    with pytest.raises(ValueError, match="cannot be opened"):
        SecretBox(KEY).open(b"\x01" + sealed[1:], associated=OTHER_EP)


@pytest.mark.parametrize("sealed", [b"", b"\x03" + b"\x00" * 40])
def test_unknown_seal_version_is_rejected(sealed: bytes) -> None:
    with pytest.raises(ValueError, match="seal version"):
        SecretBox(KEY).open(sealed, associated=EP)


def _derived(secret_key: str) -> bytes:
    """The AES key SecretBox uses, derived here independently to build a version 1 seal."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"herald endpoint secrets v1"
    ).derive(secret_key.encode())


def _sign(secret: str, msg_id: str, timestamp: datetime, payload: str) -> dict[str, str]:
    signature = standardwebhooks.Webhook(secret).sign(msg_id, timestamp, payload)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def test_generated_secret_works_with_standard_webhooks() -> None:
    secret = generate_secret()
    payload = '{"type":"order.paid","data":{"amount":120}}'
    headers = _sign(secret, "msg_1", datetime.now(UTC), payload)
    assert standardwebhooks.Webhook(secret).verify(payload, headers) == {
        "type": "order.paid",
        "data": {"amount": 120},
    }


def test_standard_webhooks_signature_uses_secret_bytes_as_hmac_key() -> None:
    secret = generate_secret()
    timestamp = datetime.now(UTC)
    payload = '{"a":1}'
    headers = _sign(secret, "msg_2", timestamp, payload)
    signed = f"msg_2.{int(timestamp.timestamp())}.{payload}".encode()
    expected = base64.b64encode(hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()


def test_another_secret_does_not_verify() -> None:
    payload = '{"a":1}'
    headers = _sign(generate_secret(), "msg_3", datetime.now(UTC), payload)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(generate_secret()).verify(payload, headers)
