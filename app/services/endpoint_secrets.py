"""Reading and rotating an endpoint's signing secrets.

The current secret has no expiry; rotating gives it one (now + grace period) and adds a new
current secret, so receivers that still hold the old one keep verifying until it expires.
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Invalid
from app.ids import new_id
from app.models import EndpointSecret
from app.schemas.endpoints import PreviousSecret, SecretOut
from app.services.endpoints import get_endpoint
from app.signing_secrets import SecretBox, generate_secret, secret_problem


async def _live_secrets(
    session: AsyncSession, *, endpoint_id: str, now: datetime
) -> list[EndpointSecret]:
    statement = (
        select(EndpointSecret)
        .where(
            EndpointSecret.endpoint_id == endpoint_id,
            or_(EndpointSecret.expires_at.is_(None), EndpointSecret.expires_at > now),
        )
        .order_by(EndpointSecret.id.desc())
    )
    return list((await session.scalars(statement)).all())


def _describe(secrets: list[EndpointSecret], secret_box: SecretBox) -> SecretOut:
    current = next(secret for secret in secrets if secret.expires_at is None)
    return SecretOut(
        secret=secret_box.open(current.sealed_secret),
        previous=[
            PreviousSecret(secret=secret_box.open(secret.sealed_secret), expires_at=expires_at)
            for secret in secrets
            if (expires_at := secret.expires_at) is not None
        ],
    )


async def get_secret(
    session: AsyncSession, *, principal: Principal, endpoint_id: str, secret_box: SecretBox
) -> SecretOut:
    await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    now = datetime.now(UTC)
    return _describe(await _live_secrets(session, endpoint_id=endpoint_id, now=now), secret_box)


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
    for live in await _live_secrets(session, endpoint_id=endpoint_id, now=now):
        if live.expires_at is None or live.expires_at > now + grace_period:
            live.expires_at = now + grace_period
    session.add(
        EndpointSecret(
            id=new_id("sec"),
            endpoint_id=endpoint_id,
            sealed_secret=secret_box.seal(secret or generate_secret()),
        )
    )
    await session.flush()
    described = _describe(
        await _live_secrets(session, endpoint_id=endpoint_id, now=now), secret_box
    )
    await session.commit()
    return described
