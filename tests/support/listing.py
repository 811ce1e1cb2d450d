"""The bounded listing every JobStore shares, asserted once for both stores."""

from __future__ import annotations

from datetime import timedelta

from support.jobs import T0, make_job
from whetstone.core.job import JobFilter
from whetstone.core.lifecycle import JobStatus
from whetstone.ports import JobStore


def assert_a_sparse_filter_reads_a_budget_per_page(store: JobStore, budget: int) -> None:
    """Given one failed job older than 3 budgets of others, when the failed jobs are listed,
    then the first pages come back empty with a cursor, and following it finds the job."""
    failed = make_job(created_at=T0, status=JobStatus.FAILED)
    store.create(failed)
    for minute in range(1, 3 * budget + 1):
        store.create(make_job(created_at=T0 + timedelta(minutes=minute)))

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        jobs, cursor = store.list_jobs(
            "org-a", JobFilter(status=JobStatus.FAILED), limit=10, cursor=cursor
        )
        pages.append([job.job_id for job in jobs])
        if cursor is None:
            break

    assert pages[0] == [] and 3 <= len(pages) <= 4
    assert [job_id for page in pages for job_id in page] == [failed.job_id]
