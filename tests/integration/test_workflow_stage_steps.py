"""The workflow steps around the trainer's data stages: record_prepared records what the
prepare stage found and re-estimates the job from it; complete never turns a job that
ended meanwhile into a completed one."""

from __future__ import annotations

import pytest
from support.jobs import make_job

from whetstone.core.catalog.base_models import get_base_model
from whetstone.core.datasets.prepared import PreparedData, SplitSize
from whetstone.core.datasets.report import DatasetStats, Issue, IssueCode, ValidationReport
from whetstone.core.estimates import estimate_cost, run_time_cap_hours
from whetstone.core.job import JobRecord
from whetstone.core.layout import JobLayout
from whetstone.core.lifecycle import JobStatus
from whetstone.core.plan import EventSinkSettings, TrainerPlan
from whetstone.runtime import get_platform
from whetstone.service import workflow
from whetstone.service.platform import Platform
from whetstone.service.records import transition, update_job


def _job_in(platform: Platform, *statuses: JobStatus) -> JobRecord:
    job = make_job()
    platform.jobs.create(job)
    workflow.write_plan(platform, job.job_id, EventSinkSettings(kind="stdout"))
    for status in statuses:
        transition(platform, job.job_id, status)
    return job


def _store_prepared(platform: Platform, job: JobRecord, prepared: PreparedData) -> None:
    platform.blobs.put(JobLayout.of(job).prepared, prepared.model_dump_json().encode())


def test_a_dataset_50_times_the_guess_gets_the_job_re_estimated() -> None:
    # Given a job estimated at the guessed 1,000 examples, whose dataset the prepare stage
    # found to hold 50,000 examples of 300 tokens
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING)
    splits = {
        "train": SplitSize(examples=45_000, tokens=45_000 * 300),
        "validation": SplitSize(examples=2_500, tokens=2_500 * 300),
        "test": SplitSize(examples=2_500, tokens=2_500 * 300),
    }
    _store_prepared(platform, job, PreparedData(valid=True, format="jsonl", splits=splits))

    # When the prepare stage's result is recorded
    recorded = workflow.record_prepared(platform, job.job_id)

    # Then the estimate is the one of the real counts, far above the guess, and the
    # dataset's splits and tokens are on the job
    real = estimate_cost(get_base_model(job.spec.base_model), job.spec, 50_000, 300)
    assert recorded.estimate.estimated_hours == real.estimated_hours
    assert recorded.estimate.estimated_hours > 10 * job.estimate.estimated_hours
    assert recorded.cost.estimated_total_usd == recorded.estimate.estimated_cost_usd
    assert recorded.dataset.num_examples == 50_000
    assert recorded.dataset.splits == {"train": 45_000, "validation": 2_500, "test": 2_500}
    assert recorded.dataset.tokens == 50_000 * 300 and recorded.dataset.tokens_estimated
    # and the plan's run-time cap follows the new estimate
    with platform.blobs.open(JobLayout.of(job).plan) as stream:
        plan = TrainerPlan.model_validate_json(stream.read())
    assert plan.options.max_run_hours == run_time_cap_hours(None, recorded.estimate)


def test_an_invalid_dataset_fails_the_step_with_the_reports_errors() -> None:
    # Given a prepare stage that found the dataset invalid
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING)
    error = Issue(code=IssueCode.INVALID_JSON, message="line 3 is not JSON", line=3)
    report = ValidationReport(
        valid=False, format=None, num_examples=0, errors=[error], warnings=[], stats=DatasetStats()
    )
    _store_prepared(platform, job, PreparedData(valid=False, message=error.message, report=report))

    # When it is recorded, then the step raises DatasetInvalid carrying the report
    with pytest.raises(workflow.DatasetInvalid, match="line 3 is not JSON") as raised:
        workflow.record_prepared(platform, job.job_id)
    assert raised.value.details["errors"][0]["code"] == "invalid_json"


def test_a_missing_prepared_json_fails_the_step() -> None:
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING)

    with pytest.raises(workflow.DatasetInvalid, match="prepared.json"):
        workflow.record_prepared(platform, job.job_id)


def test_a_training_job_completes() -> None:
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING)

    completed = workflow.complete(platform, job.job_id)

    assert completed.status is JobStatus.COMPLETED and completed.artifacts is not None


@pytest.mark.parametrize("ended", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_job_that_ended_is_not_turned_completed(ended: JobStatus) -> None:
    # Given a training job the reconciler failed, or a user cancelled, before finalize ended
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING)
    update_job(platform, job.job_id, lambda current: current.with_status(ended, "ended"))

    # When the workflow's complete step runs
    result = workflow.complete(platform, job.job_id)

    # Then the job keeps the status it had
    assert result.status is ended
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.status is ended
    assert JobStatus.COMPLETED not in [change.status for change in stored.status_history]


def test_a_job_asked_to_stop_is_handed_to_cancel_not_completed() -> None:
    # Given a training job a user stopped while finalize ran
    platform = get_platform()
    job = _job_in(platform, JobStatus.PREPARING, JobStatus.DEPLOYING, JobStatus.TRAINING)
    update_job(platform, job.job_id, lambda current: current.with_status(JobStatus.STOPPING))

    # When the workflow's complete step runs, then it raises JobStopped (the workflow cancels)
    with pytest.raises(workflow.JobStopped):
        workflow.complete(platform, job.job_id)
    stored = platform.jobs.get(job.job_id)
    assert stored is not None and stored.status is JobStatus.STOPPING
