import json
from datetime import UTC, datetime

from standardwebhooks import Webhook

from app.signing_secrets import generate_secret
from worker.signing import envelope, request_headers

CREATED = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)


def test_envelope_wraps_the_stored_payload_text_unchanged() -> None:
    stored = '{"amount": 5, "note": "h\\u00e9llo", "nested": {"a": [1, 2]}}'
    body = envelope(
        event_id="evt_1", event_type="invoice.paid", created_at=CREATED, payload_json=stored
    )
    assert json.loads(body) == {
        "id": "evt_1",
        "type": "invoice.paid",
        "timestamp": "2026-11-23T12:00:00.123456Z",
        "data": {"amount": 5, "note": "héllo", "nested": {"a": [1, 2]}},
    }
    assert body.endswith(b', "nested": {"a": [1, 2]}}}')


def test_every_active_secret_signs_and_each_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    body = envelope(event_id="evt_1", event_type="a.b", created_at=CREATED, payload_json="{}")
    timestamp = int(datetime.now(UTC).timestamp())
    headers = request_headers(
        custom={"X-Team": "billing"},
        secrets=[new, old],
        message_id="evt_1",
        timestamp=timestamp,
        body=body,
    )
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(timestamp)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert headers["X-Team"] == "billing"
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["id"] == "evt_1"
    assert headers["content-type"] == "application/json"
