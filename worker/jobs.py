"""Works off durable bulk jobs (``app.services.jobs``) one batch at a time.

A job is leased like a delivery: a worker killed mid-job leaves a lease that expires, and
the next worker continues from the job's recorded position.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update

from app.db import SessionFactory
from app.models import Job
from app.services.jobs import run_batch
from worker.loops import WakeableLoop

log = logging.getLogger("herald.jobs")


class JobRunner(WakeableLoop):
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        worker_id: str,
        lease: timedelta,
        idle_poll: timedelta,
        batch_size: int,
        on_progress: Callable[[], None],
    ) -> None:
        super().__init__()
        self._batch_size = batch_size
        self._sessions = sessions
        self._worker_id = worker_id
        self._lease = lease
        self._idle_poll = idle_poll.total_seconds()
        self._on_progress = on_progress

    async def run(self) -> None:
        while self.next_pass():
            try:
                job_id = await self._claim()
                if job_id is not None:
                    await self._work(job_id)
                    continue
            except Exception:
                log.exception("job runner failed; retrying")
            await self.pause(self._idle_poll)

    async def _claim(self) -> str | None:
        async with self._sessions() as session:
            job = await session.scalar(
                select(Job)
                .where(
                    Job.status.in_(("queued", "running")),
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at <= func.now()),
                )
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job is None:
                return None
            job.status = "running"
            job.leased_by = self._worker_id
            job.lease_expires_at = func.now() + self._lease
            await session.commit()
            log.info("working on job %s (%s)", job.id, job.kind)
            return job.id

    async def _work(self, job_id: str) -> None:
        async with self._sessions() as session:
            try:
                while not self._stopping:
                    job = await session.get(Job, job_id, populate_existing=True)
                    if job is None or job.leased_by != self._worker_id:
                        return  # deleted, or the lease passed to another worker
                    more = await run_batch(session, job=job, batch_size=self._batch_size)
                    self._on_progress()
                    if not more:
                        log.info("job %s finished", job_id)
                        return
                    await self._set_lease(job_id, func.now() + self._lease)
                # Stopping: hand the job on at once instead of at lease expiry.
                await self._set_lease(job_id, func.now())
            except Exception as error:
                await session.rollback()
                log.exception("job %s failed", job_id)
                await session.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(status="failed", error=str(error)[:1000], leased_by=None)
                )
                await session.commit()

    async def _set_lease(self, job_id: str, until: ColumnElement[datetime]) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.leased_by == self._worker_id)
                .values(lease_expires_at=until)
            )
            await session.commit()
