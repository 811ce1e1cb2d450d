"""What a job ran on: the device the trainer reports, as the API shows it, and GPU hours
that count only time on a GPU."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.jobs import make_job

from whetstone.api.schemas.jobs import JobResponse
from whetstone.core.events import (
    MetricsDetail,
    StatusDetail,
    TrainerPhase,
    TrainingDevice,
    make_event,
)
from whetstone.core.job import Caller, JobRecord, utcnow
from whetstone.core.lifecycle import JobStatus
from whetstone.runtime import get_platform
from whetstone.service.ingest import ingest_event
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job
from whetstone.service.stats import user_stats

OWNER = Caller(user_id="user-1", org_id="org-a")


@pytest.fixture
def platform() -> Platform:
    return get_platform()


def trained_an_hour_on(platform: Platform, device: TrainingDevice) -> JobRecord:
    """A one-GPU job whose trainer reported `device` and has trained for an hour."""
    job = make_job(OWNER.org_id)
    platform.jobs.create(job.with_status(JobStatus.PENDING, "job created"))
    for status in (JobStatus.PREPARING, JobStatus.DEPLOYING):
        transition(platform, job.job_id, status)
    an_hour_ago = utcnow() - timedelta(hours=1)
    update_job(
        platform, job.job_id, lambda j: j.model_copy(update={"training_started_at": an_hour_ago})
    )
    training = StatusDetail(phase=TrainerPhase.TRAINING, step=0, device=device)
    progress = MetricsDetail(step=10, max_steps=100, epoch=0.1, progress=0.1)
    for detail in (training, progress):
        ingest_event(platform, make_event(job.job_id, detail))
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.status is JobStatus.TRAINING
    return stored


def test_given_a_trainer_on_the_cpu_when_it_trains_an_hour_then_no_gpu_hours_are_counted(
    platform: Platform,
) -> None:
    job = trained_an_hour_on(platform, TrainingDevice(gpu_count=0))

    shown = JobResponse.from_record(job)

    assert shown.device is not None and shown.device.label == "cpu"
    assert job.cost.compute_hours == 0
    assert user_stats(platform, OWNER).gpu_hours == 0


def test_given_a_trainer_on_two_gpus_when_it_trains_an_hour_then_two_gpu_hours_are_counted(
    platform: Platform,
) -> None:
    job = trained_an_hour_on(platform, TrainingDevice(gpu_count=2, gpu_name="NVIDIA A10G"))

    shown = JobResponse.from_record(job)

    assert shown.device is not None and shown.device.label == "2 x NVIDIA A10G"
    assert job.cost.compute_hours == pytest.approx(2.0, abs=0.01)
    assert user_stats(platform, OWNER).gpu_hours == pytest.approx(2.0, abs=0.01)
