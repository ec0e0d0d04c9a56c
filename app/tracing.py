"""OpenTelemetry tracing: a trace runs from POST /v1/events to every HTTP attempt.

The queue carries no data, so the trace context travels with the event in PostgreSQL
(W3C ``traceparent`` in ``events.trace_context``); a worker starts each attempt's span as a
child of the ingest span. Off by default: without a configured provider every span is a
no-op and no context is stored.
"""

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app import __version__
from app.settings import Settings

tracer = trace.get_tracer("herald", __version__)
_propagator = TraceContextTextMapPropagator()


def configure_tracing(settings: Settings, *, service: str) -> None:
    """Export spans over OTLP/HTTP (``OTEL_EXPORTER_OTLP_*`` variables) when enabled."""
    if not settings.otel_enabled:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def recording() -> bool:
    """Whether spans go anywhere: without a configured provider, hot paths skip them."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> Context | None:
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def context_from_headers(headers: Mapping[str, str]) -> Context | None:
    """The caller's trace, when its request carried W3C trace context."""
    if "traceparent" not in headers:
        return None
    return _propagator.extract(
        {k: headers[k] for k in ("traceparent", "tracestate") if k in headers}
    )
