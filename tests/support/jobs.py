"""Job records for store tests, with every required field filled as the service would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.errors import StaleWriteError
from whetstone.core.estimates import estimate_cost, estimate_memory
from whetstone.core.job import CostInfo, DatasetInfo, JobRecord, new_job_id
from whetstone.core.lifecycle import JobStatus
from whetstone.core.spec import HardwareParams, JobSpec, Method
from whetstone.ports import JobStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# The statuses of a job that completes, in order.
HAPPY_PATH = [
    "pending",
    "preparing",
    "building",
    "deploying",
    "training",
    "evaluating",
    "completed",
]


def make_job(
    org_id: str = "org-a",
    *,
    created_at: datetime = T0,
    method: Method = Method.LORA,
    base_model: str = "llama-3.1-8b-instruct",
    status: JobStatus = JobStatus.PENDING,
    idempotency_key: str | None = None,
    hardware: HardwareParams | None = None,
) -> JobRecord:
    chosen = {} if hardware is None else {"hardware": hardware}
    spec = JobSpec(base_model=base_model, method=method, **chosen)
    model = get_base_model(base_model)
    estimate = estimate_cost(model, spec, 1000)
    return JobRecord(
        job_id=new_job_id(created_at.timestamp()),
        org_id=org_id,
        user_id="user-1",
        spec=spec,
        status=status,
        created_at=created_at,
        updated_at=created_at,
        dataset=DatasetInfo(source="s3://b/k"),
        estimate=estimate,
        required_gib=estimate_memory(model, spec).total_gib,
        cost=CostInfo(
            hourly_rate_usd=estimate.hourly_rate_usd,
            estimated_total_usd=estimate.estimated_cost_usd,
        ),
        idempotency_key=idempotency_key,
    )


def assert_the_second_of_two_saves_from_one_version_is_stale(store: JobStore) -> None:
    """Given a job two writers read at version 0, when both save, then only the first lands."""
    job = make_job()
    store.create(job)
    first_writer, second_writer = store.get(job.job_id), store.get(job.job_id)
    assert first_writer is not None and second_writer is not None

    store.save(first_writer.with_status(JobStatus.PREPARING), expected_version=0)
    with pytest.raises(StaleWriteError):
        store.save(second_writer.with_status(JobStatus.CANCELLED), expected_version=0)

    stored = store.get(job.job_id)
    assert stored is not None and stored.status is JobStatus.PREPARING and stored.version == 1


@dataclass
class RecordingOrchestrator:
    """Stands in for the workflow where a test exercises only the API and the stores."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    def start(self, job: JobRecord) -> None:
        self.started.append(job.job_id)

    def stop(self, job: JobRecord) -> None:
        self.stopped.append(job.job_id)

    def pause(self, job: JobRecord) -> None:
        self.paused.append(job.job_id)

    def resume(self, job: JobRecord) -> None:
        self.resumed.append(job.job_id)
