"""One trace from POST /v1/events through PostgreSQL to every HTTP attempt."""

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.api.main import create_app
from app.settings import Settings
from tests.e2e.conftest import in_process_worker, make_endpoint, post_event, wait_for_deliveries
from tests.receivers import Receiver, always
from tests.support import OPERATOR_KEY, serving

exporter = InMemorySpanExporter()


def install_exporter() -> None:
    """The global provider can be set once per process; this test owns it in its process."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)


async def test_ingest_and_attempts_share_one_trace(settings: Settings, receiver: Receiver) -> None:
    install_exporter()
    receiver.script("/traced", [always(500)])
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as api,
        in_process_worker(settings),
    ):
        endpoint = await make_endpoint(api, f"{receiver.url}/traced")
        exporter.clear()
        event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})
        await wait_for_deliveries(api, [event_id])

    spans = exporter.get_finished_spans()
    [ingest] = [s for s in spans if s.name == "herald.ingest"]
    # Only this event's attempts: the worker may also pick up what earlier tests left due.
    attempts = [
        s
        for s in spans
        if s.name == "herald.attempt" and (s.attributes or {}).get("herald.event_id") == event_id
    ]
    assert ingest.attributes is not None
    assert ingest.attributes["herald.event_id"] == event_id
    assert len(attempts) == 2
    assert ingest.context is not None
    for attempt in attempts:
        assert attempt.context is not None
        assert attempt.parent is not None
        assert attempt.context.trace_id == ingest.context.trace_id
        assert attempt.parent.span_id == ingest.context.span_id
        assert attempt.attributes is not None
        assert attempt.attributes["herald.event_id"] == event_id
    outcomes = sorted(str((a.attributes or {})["herald.outcome"]) for a in attempts)
    assert outcomes == ["http_status", "success"]
