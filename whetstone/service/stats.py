"""A user's statistics over the jobs they created."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.job import Caller, JobFilter
from whetstone.service.jobs import all_jobs
from whetstone.service.platform import Platform


class UserStats(DeferredModel):
    total_jobs: int
    jobs_by_status: dict[str, int]
    gpu_hours: float
    spend_usd: float
    success_rate: Annotated[
        float | None, Field(description="completed / ended jobs; null before any ended.")
    ]


def user_stats(platform: Platform, caller: Caller) -> UserStats:
    jobs = [j for j in all_jobs(platform, caller, JobFilter()) if j.user_id == caller.user_id]
    by_status = Counter(job.status.value for job in jobs)
    ended = sum(1 for job in jobs if job.is_terminal)
    return UserStats(
        total_jobs=len(jobs),
        jobs_by_status=dict(by_status),
        gpu_hours=round(sum(job.cost.compute_hours for job in jobs), 4),
        spend_usd=round(sum(job.cost.current_usd for job in jobs), 2),
        success_rate=round(by_status["completed"] / ended, 4) if ended else None,
    )
