"""The cost a job shows while its trainer starts: it bills from the launch, not from the
first metrics event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.jobs import make_job

from whetstone.core.job import Caller, JobFilter, StatusChange, live_cost, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import HardwareParams
from whetstone.runtime import get_platform
from whetstone.service.jobs import get_job, list_jobs


def test_given_a_trainer_launched_an_hour_ago_without_metrics_when_read_then_it_cost_an_hour() -> (
    None
):
    platform = get_platform()
    hardware = HardwareParams(gpu_type="nvidia-a100-40gb", gpu_count=1)
    job = make_job("acme", status=JobStatus.DEPLOYING, hardware=hardware)
    job = job.model_copy(update={"training_started_at": utcnow() - timedelta(hours=1)})
    platform.jobs.create(job)
    caller = Caller(user_id="user-1", org_id="acme")

    shown = get_job(platform, caller, job.job_id)
    listed, _ = list_jobs(platform, caller, JobFilter(), limit=10, cursor=None)

    node_rate = job.estimate.node_hourly_rate_usd
    assert shown.cost.current_usd == pytest.approx(node_rate, rel=0.01)
    assert listed[0].cost.current_usd == pytest.approx(node_rate, rel=0.01)
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.cost.current_usd == 0  # the stored one is untouched


def test_given_a_job_paused_for_an_hour_of_its_three_when_read_then_two_hours_are_billed() -> None:
    platform = get_platform()
    hardware = HardwareParams(gpu_type="nvidia-a100-40gb", gpu_count=1)
    now = utcnow()
    job = make_job("acme", status=JobStatus.TRAINING, hardware=hardware)
    history = [
        StatusChange(status=JobStatus.DEPLOYING, at=now - timedelta(hours=3)),
        StatusChange(status=JobStatus.PAUSING, at=now - timedelta(hours=2, minutes=1)),
        StatusChange(status=JobStatus.PAUSED, at=now - timedelta(hours=2)),
        StatusChange(status=JobStatus.DEPLOYING, at=now - timedelta(hours=1)),
        StatusChange(status=JobStatus.TRAINING, at=now - timedelta(minutes=50)),
    ]
    job = job.model_copy(
        update={"training_started_at": now - timedelta(hours=3), "status_history": history}
    )
    platform.jobs.create(job)

    shown = get_job(platform, Caller(user_id="user-1", org_id="acme"), job.job_id)

    assert shown.cost.current_usd == pytest.approx(2 * job.estimate.node_hourly_rate_usd, rel=0.01)


def test_given_a_job_paused_since_an_hour_when_read_later_then_its_cost_does_not_grow() -> None:
    hardware = HardwareParams(gpu_type="nvidia-a100-40gb", gpu_count=1)
    now = utcnow()
    job = make_job("acme", status=JobStatus.PAUSED, hardware=hardware)
    history = [
        StatusChange(status=JobStatus.TRAINING, at=now - timedelta(hours=2)),
        StatusChange(status=JobStatus.PAUSED, at=now - timedelta(hours=1)),
    ]
    job = job.model_copy(
        update={"training_started_at": now - timedelta(hours=2), "status_history": history}
    )

    an_hour_on = live_cost(job, now + timedelta(hours=1))

    assert an_hour_on.current_usd == pytest.approx(live_cost(job, now).current_usd)
    assert an_hour_on.current_usd == pytest.approx(job.estimate.node_hourly_rate_usd, rel=0.01)
