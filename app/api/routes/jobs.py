from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import AuthDep, SessionDep
from app.schemas.jobs import JobOut
from app.services import jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}")
async def get_job(
    job_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: AuthDep
) -> JobOut:
    """Progress of a bulk replay or recover: ``done + failed`` of ``total``."""
    return JobOut.of(await jobs.get_job(session, principal=principal, job_id=job_id))
