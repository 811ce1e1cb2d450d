"""A user's statistics over the jobs they created."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import Field

from whetstone.core.deferred import DeferredModel
from whetstone.core.job import Caller, JobFilter
from whetstone.core.lifecycle import success_rate
from whetstone.service.platform import Platform

# The organization's jobs one stats request reads at most; `next_token` continues.
STATS_PAGE_SIZE = 500


class UserStats(DeferredModel):
    total_jobs: int
    jobs_by_status: dict[str, int]
    gpu_hours: float
    spend_usd: float
    success_rate: Annotated[
        float | None, Field(description="completed / ended jobs; null before any ended.")
    ]
    next_token: Annotated[
        str | None,
        Field(description="More jobs remain: these stats are of one page of them."),
    ] = None


def user_stats(platform: Platform, caller: Caller, *, cursor: str | None = None) -> UserStats:
    """The caller's stats over one page of the organization's jobs (newest first, at most
    STATS_PAGE_SIZE read), so a request reads a bounded amount; `next_token` continues."""
    page, next_token = platform.jobs.list_jobs(
        caller.org_id, JobFilter(), limit=STATS_PAGE_SIZE, cursor=cursor
    )
    jobs = [job for job in page if job.user_id == caller.user_id]
    by_status = Counter(job.status.value for job in jobs)
    return UserStats(
        total_jobs=len(jobs),
        jobs_by_status=dict(by_status),
        gpu_hours=round(sum(job.cost.compute_hours for job in jobs), 4),
        spend_usd=round(sum(job.cost.current_usd for job in jobs), 2),
        success_rate=success_rate(by_status),
        next_token=next_token,
    )
