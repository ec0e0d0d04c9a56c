"""What the benchmark sends: a realistic event payload (~1 KiB once enveloped) and its type."""

import json
from typing import Any

EVENT_TYPE = "invoice.paid"
CUSTOM_HEADERS = {"x-bench-source": "herald-bench"}


def payload() -> dict[str, Any]:
    """An invoice-like payload; Herald's envelope around it comes to about 1 KiB."""
    lines = [
        {
            "id": f"il_1PZkQ2LkdIwHu7ix{n:04d}",
            "description": f"Pro plan seat ({n + 1} of 3), billed monthly",
            "amount": 4900,
            "currency": "eur",
            "quantity": 1,
        }
        for n in range(3)
    ]
    return {
        "object": "invoice",
        "id": "in_1PZkQ2LkdIwHu7ixQ1b2C3d4",
        "number": "ACME-2026-004711",
        "status": "paid",
        "currency": "eur",
        "amount_due": 14700,
        "amount_paid": 14700,
        "customer": {
            "id": "cus_Q8xYz7WvUt6S5r",
            "email": "billing@example.com",
            "name": "Example GmbH",
            "address": {"line1": "Hauptstrasse 1", "city": "Berlin", "country": "DE"},
        },
        "lines": lines,
        "metadata": {"order_id": "ord_8817263", "channel": "web"},
        "paid_at": "2026-11-23T10:15:00Z",
        "hosted_invoice_url": "https://pay.example.com/i/acme/4711",
    }


def event_body(tenant_id: str, *, event_id: str | None = None) -> bytes:
    """A ``POST /v1/events`` body."""
    document: dict[str, Any] = {"tenant_id": tenant_id, "type": EVENT_TYPE, "payload": payload()}
    if event_id is not None:
        document["id"] = event_id
    return json.dumps(document, separators=(",", ":")).encode()
