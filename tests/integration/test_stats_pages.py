"""Stats read one bounded page of the organization's jobs a request; the SDK adds pages up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.apigw import call_api
from support.jobs import T0, make_job

from whetstone.cli.tokens import DEFAULT_CALLER
from whetstone.client import WhetstoneClient
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service import stats

API = "/api/v1/fine-tuning"
STATUSES = [JobStatus.COMPLETED] * 3 + [JobStatus.FAILED, JobStatus.PENDING]


@pytest.fixture
def five_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five jobs of the local user, and pages of two."""
    monkeypatch.setattr(stats, "STATS_PAGE_SIZE", 2)
    for minute, status in enumerate(STATUSES):
        job = make_job(
            DEFAULT_CALLER.org_id, created_at=T0 + timedelta(minutes=minute), status=status
        )
        get_platform().jobs.create(job.model_copy(update={"user_id": DEFAULT_CALLER.user_id}))


@pytest.mark.usefixtures("five_jobs")
def test_a_stats_request_reads_one_page_and_says_where_the_next_starts() -> None:
    first = call_api("GET", f"{API}/stats").body
    second = call_api("GET", f"{API}/stats?next_token={first['next_token']}").body

    assert first["total_jobs"] == 2 and first["next_token"]
    assert second["total_jobs"] == 2 and second["next_token"]


@pytest.mark.usefixtures("five_jobs")
def test_the_sdk_adds_every_page_up(client: WhetstoneClient) -> None:
    total = client.stats()

    assert total.total_jobs == 5 and total.next_token is None
    assert total.jobs_by_status == {"completed": 3, "failed": 1, "pending": 1}
    assert total.success_rate == 0.75
