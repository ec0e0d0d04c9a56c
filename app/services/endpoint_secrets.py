"""Reading and rotating an endpoint's signing secrets.

The current secret has no expiry; rotating gives it one (now + grace period) and adds a new
current secret, so receivers that still hold the old one keep verifying until it expires.
At most ``MAX_LIVE_SECRETS`` are live at once: each one is another signature in every
delivery's header and another HMAC per attempt, so rotating in a loop must not grow them.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Invalid
from app.ids import new_id
from app.models import EndpointSecret
from app.schemas.endpoints import SecretOut
from app.services.endpoints import get_endpoint
from app.signing_secrets import SecretBox, generate_secret, secret_problem

MAX_LIVE_SECRETS = 5  # the current one and four previous


async def _live_secrets(
    session: AsyncSession, *, endpoint_id: str, now: datetime
) -> list[EndpointSecret]:
    """Newest first."""
    statement = (
        select(EndpointSecret)
        .where(
            EndpointSecret.endpoint_id == endpoint_id,
            or_(EndpointSecret.expires_at.is_(None), EndpointSecret.expires_at > now),
        )
        # Ids order by creation only to the millisecond; created_at breaks those ties.
        .order_by(EndpointSecret.created_at.desc(), EndpointSecret.id.desc())
    )
    return list((await session.scalars(statement)).all())


def _describe(
    secrets: list[EndpointSecret], *, endpoint_id: str, secret_box: SecretBox
) -> SecretOut:
    current = next((secret for secret in secrets if secret.expires_at is None), None)
    if current is None:
        # Creation and rotation always leave one; without it nothing can be signed.
        raise RuntimeError(f"endpoint {endpoint_id} has no current signing secret")
    return SecretOut.of(
        secret_box.open(current.sealed_secret, associated=endpoint_id),
        [
            (secret_box.open(secret.sealed_secret, associated=endpoint_id), expires_at)
            for secret in secrets
            if (expires_at := secret.expires_at) is not None
        ],
    )


async def get_secret(
    session: AsyncSession, *, principal: Principal, endpoint_id: str, secret_box: SecretBox
) -> SecretOut:
    await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    now = datetime.now(UTC)
    secrets = await _live_secrets(session, endpoint_id=endpoint_id, now=now)
    return _describe(secrets, endpoint_id=endpoint_id, secret_box=secret_box)


async def rotate_secret(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: str,
    secret: str | None,
    grace_period: timedelta,
    secret_box: SecretBox,
) -> SecretOut:
    if secret is not None and (problem := secret_problem(secret)) is not None:
        raise Invalid("/secret", problem)
    # The row lock serialises concurrent rotations so exactly one secret stays current.
    await get_endpoint(session, principal=principal, endpoint_id=endpoint_id, for_update=True)
    now = datetime.now(UTC)
    await session.execute(
        delete(EndpointSecret).where(
            EndpointSecret.endpoint_id == endpoint_id, EndpointSecret.expires_at <= now
        )
    )
    previous = await _live_secrets(session, endpoint_id=endpoint_id, now=now)
    for live in previous:
        if live.expires_at is None or live.expires_at > now + grace_period:
            live.expires_at = now + grace_period
    # The new current secret takes one of the places: the oldest previous ones expire now.
    for expired in previous[MAX_LIVE_SECRETS - 1 :]:
        await session.delete(expired)
    session.add(
        EndpointSecret(
            id=new_id("sec"),
            endpoint_id=endpoint_id,
            sealed_secret=secret_box.seal(secret or generate_secret(), associated=endpoint_id),
        )
    )
    await session.flush()
    secrets = await _live_secrets(session, endpoint_id=endpoint_id, now=now)
    described = _describe(secrets, endpoint_id=endpoint_id, secret_box=secret_box)
    await session.commit()
    return described
