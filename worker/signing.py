"""The request a receiver gets: Standard Webhooks envelope, headers and signatures."""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from app import __version__
from app.signing_secrets import secret_bytes

USER_AGENT = f"Herald/{__version__}"


def envelope(*, event_id: str, event_type: str, created_at: datetime, payload_json: str) -> bytes:
    """The body, built around the payload's stored JSON text so it is never re-encoded."""
    head = orjson.dumps(
        {
            "id": event_id,
            "type": event_type,
            "timestamp": created_at.isoformat().replace("+00:00", "Z"),
        }
    )
    return head[:-1] + b',"data":' + payload_json.encode() + b"}"


def signature(*, secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64 HMAC-SHA256>`` per active secret, space separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(hmac.new(secret_bytes(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def request_headers(
    *,
    custom: Mapping[str, str],
    secrets: Sequence[str],
    message_id: str,
    timestamp: int,
    body: bytes,
) -> dict[str, str]:
    headers = dict(custom)
    headers.update(
        {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                secrets=secrets, message_id=message_id, timestamp=timestamp, body=body
            ),
        }
    )
    return headers
