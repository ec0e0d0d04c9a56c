"""Endpoints: where a tenant receives webhooks, with what, and signed by which secrets."""

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import endpoint_state, operational
from app.auth import Principal
from app.errors import Invalid, NotFound
from app.filters import FilterError, compile_filter
from app.headers import merge_redacted, validate_custom_headers
from app.ids import new_id
from app.models import Endpoint, EndpointSecret
from app.operational import Notification, endpoint_notification
from app.pagination import Page, fetch_page
from app.schemas.endpoints import EndpointCreate, EndpointUpdate
from app.services.tenants import commit_unless_tenant_vanished, find_tenant
from app.settings import Settings
from app.signing_secrets import SecretBox, generate_secret, secret_problem
from app.storable import document_problem
from app.subscriptions import SubscriptionError, validate_patterns

# RFC 1035 limits, the most any resolver accepts; a longer name can only fail at delivery.
MAX_HOSTNAME_LENGTH = 253
MAX_HOSTNAME_LABEL_LENGTH = 63


def check_url(url: str, *, https_only: bool) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Invalid("/url", f"is not a valid URL: {error}") from error
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme not in allowed:
        raise Invalid("/url", f"must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise Invalid("/url", "must name a host")
    _check_hostname(parts.hostname)
    if parts.username is not None or parts.password is not None:
        raise Invalid("/url", "must not carry credentials; use a custom header instead")
    if parts.fragment:
        raise Invalid("/url", "must not have a fragment")
    if port == 0:
        raise Invalid("/url", "has an invalid port")
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise Invalid("/url", "must not contain whitespace or control characters")


def _check_hostname(hostname: str) -> None:
    if len(hostname) > MAX_HOSTNAME_LENGTH:
        raise Invalid("/url", f"has a host name longer than {MAX_HOSTNAME_LENGTH} characters")
    if any(len(label) > MAX_HOSTNAME_LABEL_LENGTH for label in hostname.split(".")):
        raise Invalid(
            "/url", f"has a host name label longer than {MAX_HOSTNAME_LABEL_LENGTH} characters"
        )


def _check_filter(document: dict[str, object] | None) -> None:
    if document is None:
        return
    try:
        compile_filter(document)
    except FilterError as error:
        raise Invalid("/filter" + error.pointer, error.message) from error
    # The filter language accepts any string, but the jsonb column does not.
    found = document_problem(document, "/filter")
    if found is not None:
        raise Invalid(*found)


def _check_subscriptions(patterns: list[str]) -> list[str]:
    try:
        return validate_patterns(patterns)
    except SubscriptionError as error:
        pointer = "/subscriptions" if error.index is None else f"/subscriptions/{error.index}"
        raise Invalid(pointer, error.message) from error


def _check_secret(secret: str) -> None:
    problem = secret_problem(secret)
    if problem is not None:
        raise Invalid("/secret", problem)


async def create_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    body: EndpointCreate,
    secret_box: SecretBox,
    https_only: bool,
) -> Endpoint:
    tenant_id = principal.tenant_for(body.tenant_id)
    if tenant_id is None:
        raise Invalid("/tenant_id", "is required with an operator key")
    check_url(body.url, https_only=https_only)
    subscriptions = _check_subscriptions(body.subscriptions)
    _check_filter(body.filter)
    # Nothing is stored yet, so a redaction marker has no value to stand for.
    headers = merge_redacted(body.headers, {})
    validate_custom_headers(headers)
    if body.secret is not None:
        _check_secret(body.secret)
    await find_tenant(session, tenant_id=tenant_id)
    endpoint = Endpoint(
        id=new_id("ep"),
        tenant_id=tenant_id,
        url=body.url,
        description=body.description,
        subscriptions=subscriptions,
        filter=body.filter,
        headers=headers,
        rate_limit=body.rate_limit,
        circuit_breaker=(
            body.circuit_breaker.model_dump(exclude_none=True) if body.circuit_breaker else None
        ),
        enabled=body.enabled,
        disabled_reason=None if body.enabled else "manual",
        metadata_=body.metadata,
    )
    session.add(endpoint)
    session.add(
        EndpointSecret(
            id=new_id("sec"),
            endpoint_id=endpoint.id,
            sealed_secret=secret_box.seal(body.secret or generate_secret(), associated=endpoint.id),
        )
    )
    await commit_unless_tenant_vanished(session, tenant_id=tenant_id)
    await session.refresh(endpoint)
    return endpoint


async def get_endpoint(
    session: AsyncSession, *, principal: Principal, endpoint_id: str, for_update: bool = False
) -> Endpoint:
    statement = select(Endpoint).where(Endpoint.id == endpoint_id)
    if for_update:
        statement = statement.with_for_update()
    endpoint = await session.scalar(statement)
    if endpoint is None or not principal.can_see(endpoint.tenant_id):
        raise NotFound(f"endpoint {endpoint_id} not found")
    return endpoint


async def list_endpoints(
    session: AsyncSession,
    *,
    principal: Principal,
    tenant_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Endpoint]:
    statement = select(Endpoint)
    scope = principal.tenant_for(tenant_id)
    if scope is not None:
        statement = statement.where(Endpoint.tenant_id == scope)
    return await fetch_page(session, statement, Endpoint.id, limit=limit, cursor=cursor)


async def update_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: str,
    body: EndpointUpdate,
    settings: Settings,
) -> Endpoint:
    endpoint = await get_endpoint(
        session, principal=principal, endpoint_id=endpoint_id, for_update=True
    )
    changed = body.model_fields_set
    if "url" in changed:
        if body.url is None:
            raise Invalid("/url", "cannot be null")
        check_url(body.url, https_only=settings.https_only)
        endpoint.url = body.url
    if "subscriptions" in changed:
        if body.subscriptions is None:
            raise Invalid("/subscriptions", 'cannot be null; use ["*"] for every type')
        endpoint.subscriptions = _check_subscriptions(body.subscriptions)
    if "filter" in changed:
        _check_filter(body.filter)
        endpoint.filter = body.filter
    if "headers" in changed:
        headers = merge_redacted(body.headers or {}, endpoint.headers)
        validate_custom_headers(headers)
        endpoint.headers = headers
    if "description" in changed:
        endpoint.description = body.description
    if "rate_limit" in changed:
        endpoint.rate_limit = body.rate_limit
    if "circuit_breaker" in changed:
        endpoint.circuit_breaker = (
            body.circuit_breaker.model_dump(exclude_none=True) if body.circuit_breaker else None
        )
    if "metadata" in changed:
        endpoint.metadata_ = body.metadata or {}
    if "enabled" in changed and body.enabled is not None and body.enabled != endpoint.enabled:
        await set_enabled(
            session, endpoint=endpoint, enabled=body.enabled, reason="manual", settings=settings
        )
    await session.commit()
    await session.refresh(endpoint)
    return endpoint


async def set_enabled(
    session: AsyncSession, *, endpoint: Endpoint, enabled: bool, reason: str, settings: Settings
) -> None:
    """Enable (releasing held deliveries, circuit closed) or disable (holding them).

    The caller holds the endpoint's row lock and commits.
    """
    connection = await session.connection()
    subject = _subject(endpoint)
    if enabled:
        await connection.exec_driver_sql(endpoint_state.ENABLE, ([endpoint.id],))
        await connection.exec_driver_sql(endpoint_state.RELEASE_HELD, ([endpoint.id],))
        if endpoint.circuit_state != "closed":
            await _notify(
                connection,
                endpoint_notification("endpoint.circuit_closed", subject, reason="enabled"),
                settings=settings,
            )
    else:
        await connection.exec_driver_sql(endpoint_state.DISABLE, ([endpoint.id], reason))
        await connection.exec_driver_sql(endpoint_state.HOLD_WAITING, ([endpoint.id],))
        await _notify(
            connection,
            endpoint_notification("endpoint.disabled", subject, reason=reason),
            settings=settings,
        )


async def reset_circuit(
    session: AsyncSession, *, principal: Principal, endpoint_id: str, settings: Settings
) -> Endpoint:
    """Close the circuit by hand: held deliveries flow again, the failure count restarts."""
    endpoint = await get_endpoint(
        session, principal=principal, endpoint_id=endpoint_id, for_update=True
    )
    was_open = endpoint.circuit_state != "closed"
    connection = await session.connection()
    await connection.exec_driver_sql(
        endpoint_state.CLOSE_CIRCUITS, ([endpoint.id], ["open", "half_open", "closed"])
    )
    if endpoint.enabled:
        await connection.exec_driver_sql(endpoint_state.RELEASE_HELD, ([endpoint.id],))
    if was_open:
        await _notify(
            connection,
            endpoint_notification(
                "endpoint.circuit_closed", _subject(endpoint), reason="manual_reset"
            ),
            settings=settings,
        )
    await session.commit()
    await session.refresh(endpoint)
    return endpoint


def _subject(endpoint: Endpoint) -> dict[str, str]:
    """What an operational notification says about an endpoint."""
    return {"id": endpoint.id, "tenant_id": endpoint.tenant_id, "url": endpoint.url}


async def _notify(
    connection: AsyncConnection, notification: Notification, *, settings: Settings
) -> None:
    """An operational notification, in the caller's transaction."""
    chosen = operational.reportable([notification], settings=settings)
    if chosen:
        await connection.exec_driver_sql(
            operational.INSERT_NOTIFICATIONS, operational.notification_args(chosen)
        )


async def delete_endpoint(session: AsyncSession, *, principal: Principal, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    await session.delete(endpoint)
    await session.commit()
