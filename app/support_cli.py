"""Support commands of ``herald``: search the logs, resend, replay the DLQ — all over the REST API.

``herald events|deliveries|attempts|dlq list`` print a table (``--json``: the raw objects),
``herald deliveries show|resend ID`` and ``herald dlq replay`` act on deliveries. Errors are
one line on stderr: exit code 1 for an error answer, 2 when the API cannot be reached.
"""

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.support_client import (
    FINISHED,
    ApiError,
    ApiUnreachable,
    DeadReason,
    DeliveryStatus,
    ErrorClass,
    HeraldClient,
    Job,
    JsonObject,
    Params,
)

POLL_INTERVAL = 0.5
MAX_PAGE_SIZE = 250

events_app = typer.Typer(help="Events posted by the application.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Deliveries: list, inspect, resend.", no_args_is_help=True)
attempts_app = typer.Typer(help="The attempt log.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter queue: list, replay.", no_args_is_help=True)
endpoints_app = typer.Typer(help="Endpoints: reset a circuit.", no_args_is_help=True)


def register(cli: typer.Typer) -> None:
    """Add the support commands to the ``herald`` command."""
    cli.add_typer(events_app, name="events")
    cli.add_typer(deliveries_app, name="deliveries")
    cli.add_typer(attempts_app, name="attempts")
    cli.add_typer(dlq_app, name="dlq")
    cli.add_typer(endpoints_app, name="endpoints")


def _timestamp(value: str | None) -> str | None:
    """RFC 3339 / ISO 8601; without an offset it means UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time") from error
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


# Options shared by the commands.
ApiUrl = Annotated[
    str, typer.Option("--api-url", envvar="HERALD_API_URL", help="base URL of the Herald API")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar=["HERALD_API_KEY", "HERALD_OPERATOR_KEY"],
        help="API key (operator or tenant)",
    ),
]
DEFAULT_API_URL = "http://127.0.0.1:8000"
AsJson = Annotated[bool, typer.Option("--json", help="print the raw JSON")]
Tenant = Annotated[str | None, typer.Option("--tenant", help="tenant id")]
Endpoint = Annotated[str | None, typer.Option("--endpoint", help="endpoint id")]
EventType = Annotated[str | None, typer.Option("--type", help="event type")]
Since = Annotated[
    str | None,
    typer.Option(
        help="from this time on, inclusive (ISO 8601, UTC if no offset)", callback=_timestamp
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        help="before this time, exclusive (ISO 8601, UTC if no offset)", callback=_timestamp
    ),
]
Limit = Annotated[
    int | None,
    typer.Option(min=1, max=MAX_PAGE_SIZE, help="page size (with --all) or how many to show"),
]
All = Annotated[bool, typer.Option("--all", help="follow next_cursor through every page")]


@contextmanager
def _api(api_url: str, key: str | None) -> Iterator[HeraldClient]:
    """A client; error answers and unreachable APIs become one line on stderr and an exit code."""
    try:
        with HeraldClient(api_url, key) as client:
            yield client
    except ApiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except ApiUnreachable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        # Piped or captured: never truncate ids to some assumed terminal width.
        console = Console(stderr=stderr, highlight=False, width=10_000)
    return console


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _when(value: Any) -> str:
    if not isinstance(value, str):
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _first_line(value: Any, width: int = 80) -> str:
    if not isinstance(value, str) or not value.strip():
        return ""
    line = value.strip().splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def _status(delivery: JsonObject) -> str:
    reason = delivery.get("dead_reason")
    return f"{delivery['status']} ({reason})" if reason else str(delivery["status"])


def _result(attempt: JsonObject) -> str:
    """The response status, else the error class: what went wrong, in one word."""
    if attempt.get("response_status") is not None:
        return str(attempt["response_status"])
    return str(attempt.get("error_class") or "—")


Column = tuple[str, Callable[[JsonObject], Any]]


def _table(columns: Sequence[Column], rows: Sequence[JsonObject]) -> Table:
    table = Table()
    for name, _ in columns:
        table.add_column(name, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(cell(row)) for _, cell in columns))
    return table


def _cell(value: Any) -> Text:
    # Text, not str: a response body like "[error]" must not be read as rich markup.
    return Text("—" if value is None else str(value))


def _list(
    path: str,
    columns: Sequence[Column],
    params: Params,
    limit: int | None,
    follow: bool,
    as_json: bool,
    api_url: str,
    key: str | None,
) -> None:
    """Print one page (or, following cursors, every page) of a list route."""
    page_size = limit if limit is not None or not follow else MAX_PAGE_SIZE
    with _api(api_url, key) as client:
        items, more = client.collect(path, {**params, "limit": page_size}, follow=follow)
    if as_json:
        _print_json(items)
        return
    if not items:
        typer.echo("nothing found", err=True)
        return
    _console().print(_table(columns, items))
    if more:
        typer.echo(f"showing {len(items)}; more exist: add --all for every page", err=True)


EVENT_COLUMNS: list[Column] = [
    ("ID", lambda e: e["id"]),
    ("TENANT", lambda e: e["tenant_id"]),
    ("TYPE", lambda e: e["type"]),
    ("DELIVERIES", lambda e: e.get("delivery_count")),
    ("CREATED", lambda e: _when(e["created_at"])),
]
DELIVERY_COLUMNS: list[Column] = [
    ("ID", lambda d: d["id"]),
    ("EVENT", lambda d: d["event_id"]),
    ("ENDPOINT", lambda d: d["endpoint_id"]),
    ("TYPE", lambda d: d.get("event_type")),
    ("STATUS", _status),
    ("ATTEMPTS", lambda d: d["attempts"]),
    ("NEXT ATTEMPT", lambda d: _when(d.get("next_attempt_at"))),
    ("CREATED", lambda d: _when(d.get("created_at"))),
]
ATTEMPT_COLUMNS: list[Column] = [
    ("ID", lambda a: a["id"]),
    ("DELIVERY", lambda a: a["delivery_id"]),
    ("#", lambda a: a["number"]),
    ("TRIGGER", lambda a: a["trigger"]),
    ("RESULT", _result),
    ("DURATION", lambda a: f"{a['duration_ms']} ms"),
    ("TIME", lambda a: _when(a.get("created_at"))),
]
DLQ_COLUMNS: list[Column] = [
    ("ID", lambda d: d["id"]),
    ("ENDPOINT", lambda d: d["endpoint_id"]),
    ("TYPE", lambda d: d.get("event_type")),
    ("REASON", lambda d: d.get("dead_reason")),
    ("ATTEMPTS", lambda d: d["attempts"]),
    ("DEAD AT", lambda d: _when(d.get("dead_at"))),
]
LOG_COLUMNS: list[Column] = [
    ("#", lambda a: a["number"]),
    ("TRIGGER", lambda a: a["trigger"]),
    ("TIME", lambda a: _when(a.get("created_at"))),
    ("RESULT", _result),
    ("DURATION", lambda a: f"{a['duration_ms']} ms"),
    ("RESPONSE", lambda a: _first_line(a.get("response_body") or a.get("error_detail"))),
]


@events_app.command("list")
def list_events(
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    all_pages: All = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Events, newest first."""
    params = {"tenant_id": tenant, "type": event_type, "since": since, "until": until}
    _list("/v1/events", EVENT_COLUMNS, params, limit, all_pages, as_json, api_url, key)


@deliveries_app.command("list")
def list_deliveries(
    tenant: Tenant = None,
    endpoint: Endpoint = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    event_type: EventType = None,
    status: Annotated[DeliveryStatus | None, typer.Option(help="delivery status")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    all_pages: All = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Deliveries, newest first."""
    params = {
        "tenant_id": tenant,
        "endpoint_id": endpoint,
        "event_id": event,
        "type": event_type,
        "status": status.value if status else None,
        "since": since,
        "until": until,
    }
    _list("/v1/deliveries", DELIVERY_COLUMNS, params, limit, all_pages, as_json, api_url, key)


@attempts_app.command("list")
def list_attempts(
    tenant: Tenant = None,
    endpoint: Endpoint = None,
    delivery: Annotated[str | None, typer.Option("--delivery", help="delivery id")] = None,
    status_code: Annotated[
        int | None, typer.Option("--status-code", min=100, max=599, help="response status")
    ] = None,
    error_class: Annotated[ErrorClass | None, typer.Option(help="error class")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    all_pages: All = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """The attempt log, newest first."""
    params = {
        "tenant_id": tenant,
        "endpoint_id": endpoint,
        "delivery_id": delivery,
        "response_status": status_code,
        "error_class": error_class.value if error_class else None,
        "since": since,
        "until": until,
    }
    _list("/v1/attempts", ATTEMPT_COLUMNS, params, limit, all_pages, as_json, api_url, key)


@dlq_app.command("list")
def list_dlq(
    tenant: Tenant = None,
    endpoint: Endpoint = None,
    event_type: EventType = None,
    reason: Annotated[DeadReason | None, typer.Option(help="why it died")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    all_pages: All = False,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Dead deliveries, the most recently dead first (``--since``/``--until`` bound the death)."""
    params = {
        "tenant_id": tenant,
        "endpoint_id": endpoint,
        "type": event_type,
        "reason": reason.value if reason else None,
        "since": since,
        "until": until,
    }
    _list("/v1/dlq", DLQ_COLUMNS, params, limit, all_pages, as_json, api_url, key)


@deliveries_app.command("show")
def show_delivery(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="delivery id")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """A delivery and its attempts, oldest first."""
    with _api(api_url, key) as client:
        delivery = client.delivery(delivery_id)
    if as_json:
        _print_json(delivery)
        return
    for label, value in [
        ("delivery", delivery["id"]),
        ("status", _status(delivery)),
        ("event", f"{delivery['event_id']} ({delivery.get('event_type')})"),
        ("endpoint", delivery["endpoint_id"]),
        ("tenant", delivery["tenant_id"]),
        ("attempts", delivery["attempts"]),
        ("next attempt", _when(delivery.get("next_attempt_at"))),
        ("dead at", _when(delivery.get("dead_at"))),
        ("created", _when(delivery.get("created_at"))),
    ]:
        typer.echo(f"{label + ':':<14}{value}")
    attempts: list[JsonObject] = delivery.get("attempt_log") or []
    typer.echo()
    if attempts:
        typer.echo("attempts, oldest first:")
        _console().print(_table(LOG_COLUMNS, attempts))
    else:
        typer.echo("no attempts yet")


@deliveries_app.command("resend")
def resend_delivery(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="delivery id")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Send a delivery again now, with the full retry schedule (trigger ``manual``)."""
    with _api(api_url, key) as client:
        delivery = client.resend(delivery_id)
    if as_json:
        _print_json(delivery)
    else:
        typer.echo(f"resent {delivery['id']}: {_status(delivery)}")


@endpoints_app.command("reset-circuit")
def reset_circuit(
    endpoint_id: Annotated[str, typer.Argument(metavar="ID", help="endpoint id")],
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Close an endpoint's circuit now: its held deliveries are sent again, in due order."""
    with _api(api_url, key) as client:
        endpoint = client.reset_circuit(endpoint_id)
    if as_json:
        _print_json(endpoint)
    else:
        typer.echo(f"circuit of {endpoint['id']} is {endpoint['circuit']['state']}")


@dlq_app.command("replay")
def replay_dlq(
    tenant: Tenant = None,
    endpoint: Endpoint = None,
    event_type: EventType = None,
    reason: Annotated[DeadReason | None, typer.Option(help="why it died")] = None,
    since: Since = None,
    until: Until = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="start the job and print its id; do not follow it")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0, help="give up following the job after this many seconds")
    ] = 3600,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    key: ApiKey = None,
) -> None:
    """Replay every dead delivery that matches, as a durable job; follow its progress."""
    where = {
        "tenant_id": tenant,
        "endpoint_id": endpoint,
        "type": event_type,
        "reason": reason.value if reason else None,
        "since": since,
        "until": until,
    }
    with _api(api_url, key) as client:
        job = client.start_dlq_replay(where)
        if not no_wait:
            job = _follow(client, job, timeout)
    if as_json:
        _print_json(job)
    else:
        typer.echo(
            f"job {job['id']} {job['status']}: {job['done']} replayed, {job['failed']} failed"
            f" of {job['total']}"
        )
    if job["status"] == "failed":
        if error := job.get("error"):
            typer.echo(f"error: job {job['id']} failed: {error}", err=True)
        raise typer.Exit(1)
    if job["status"] not in FINISHED and not no_wait:
        typer.echo(
            f"error: job {job['id']} is still {job['status']} after {timeout:g} s;"
            " it goes on in the background",
            err=True,
        )
        raise typer.Exit(1)


def _follow(client: HeraldClient, job: Job, timeout: float) -> Job:
    """Poll the job until it finishes or ``timeout`` passes, drawing progress on stderr."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_console(stderr=True)) as progress:
        task = progress.add_task(f"{job['id']} {job['status']}", total=None)
        while True:
            progress.update(
                task,
                description=f"{job['id']} {job['status']}",
                total=job["total"] or None,
                completed=job["done"] + job["failed"],
            )
            if job["status"] in FINISHED or time.monotonic() >= deadline:
                return job
            time.sleep(POLL_INTERVAL)
            job = client.job(job["id"])
