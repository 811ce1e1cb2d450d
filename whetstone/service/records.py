"""Writing a job record: read, change, write conditionally, again when another writer won."""

from __future__ import annotations

from collections.abc import Callable

from whetstone.core.errors import ConflictError, NotFoundError, StaleWriteError
from whetstone.core.job import JobRecord
from whetstone.core.lifecycle import JobStatus, check_transition
from whetstone.service.platform import Platform

MAX_SAVE_ATTEMPTS = 5


def update_job(
    platform: Platform, job_id: str, change: Callable[[JobRecord], JobRecord]
) -> JobRecord:
    """Read, change and conditionally write a job, again when another writer came first."""
    for _ in range(MAX_SAVE_ATTEMPTS):
        job = platform.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}", code="job_not_found")
        try:
            return platform.jobs.save(change(job), expected_version=job.version)
        except StaleWriteError:
            continue
    raise ConflictError(f"job {job_id} kept changing; try again", code="busy")


def transition(
    platform: Platform, job_id: str, target: JobStatus, message: str | None = None
) -> JobRecord:
    """Move a job to `target`; ConflictError (illegal_transition) when its status forbids it."""

    def change(job: JobRecord) -> JobRecord:
        check_transition(job.status, target)
        return job.with_status(target, message)

    return update_job(platform, job_id, change)
