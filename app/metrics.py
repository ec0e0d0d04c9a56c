"""Prometheus metrics: one definition, shared by the API and the workers.

Each process exports its own registry (the API at ``/metrics``, a worker on
``HERALD_WORKER_METRICS_PORT``); database-wide gauges (backlog, DLQ, circuits) are read at
scrape time by the API, so they are not multiplied by the number of workers.
"""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
END_TO_END_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 1800, 7200)

deliveries = Counter(
    "herald_deliveries",
    "Delivery outcomes after an attempt: succeeded, retry (scheduled again) or dead.",
    ["outcome"],
)
attempts = Counter(
    "herald_attempts",
    "HTTP attempts by error class and status class.",
    ["error_class", "status_class"],
)
attempt_duration = Histogram(
    "herald_attempt_duration_seconds", "Duration of one HTTP attempt.", buckets=LATENCY_BUCKETS
)
end_to_end = Histogram(
    "herald_end_to_end_seconds",
    "From the event's acceptance to its successful delivery.",
    buckets=END_TO_END_BUCKETS,
)
events_ingested = Counter(
    "herald_events_ingested", "Events accepted by POST /v1/events.", ["duplicate"]
)
http_requests = Counter(
    "herald_http_requests",
    "API requests by route template and status.",
    ["method", "route", "status"],
)
http_request_duration = Histogram(
    "herald_http_request_duration_seconds",
    "API request duration.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
due_backlog = Gauge("herald_due_backlog", "Pending deliveries that are due now.")
due_oldest_age = Gauge(
    "herald_due_oldest_age_seconds", "How long the oldest due delivery has been waiting."
)
dlq_size = Gauge("herald_dlq_size", "Dead deliveries in the DLQ.")
circuits_open = Gauge(
    "herald_circuits_open", "Endpoints whose circuit is open or half-open (probing)."
)
held_deliveries = Gauge(
    "herald_held_deliveries",
    "Deliveries held for a disabled endpoint or an open circuit (no attempt spent).",
)
# Counted by the per-endpoint rate limiter; exported from the start so dashboards and alerts
# can be built before an endpoint is ever limited.
rate_limited_waits = Counter(
    "herald_rate_limited_waits", "Deliveries that waited for their endpoint's rate limit."
)


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status is not None else "none"
