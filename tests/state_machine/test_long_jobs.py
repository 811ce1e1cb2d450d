"""A job's execution history does not grow with its duration: the workflow waits for each
trainer stage by callback, and the train stage's heartbeats (its metrics) write no history
event. A Standard execution fails at 25,000 events; the old Wait/Poll loop wrote ~9 a
minute of polling, so a job ran out past ~46 hours."""

from __future__ import annotations

import time
from datetime import timedelta

import boto3
from support.aws_workflow import (
    TAG,
    eventbridge_event,
    new_job,
    push_image,
    trainer_says,
    write_model,
    write_prepared,
)
from support.sfn_mock import MockedStepFunctions, history, wait_for

from functions import ingest
from whetstone.adapters.aws.sfn_orchestrator import StepFunctionsOrchestrator, execution_arn
from whetstone.core.events import MetricsDetail, TrainerPhase, TrainerStage, make_event
from whetstone.core.job import utcnow
from whetstone.service.platform import Platform

DAYS = 30
METRICS_EVERY = timedelta(minutes=30)


def wait_for_stage(platform: Platform, job_id: str, stage: TrainerStage) -> None:
    for _ in range(4000):
        job = platform.jobs.get(job_id)
        if job is not None and job.task_stage is stage:
            return
        time.sleep(0.005)
    raise AssertionError(f"the workflow of {job_id} never waited on its {stage} stage")


def run_job(
    platform: Platform, sfn: MockedStepFunctions, arn: str, trained_for: timedelta
) -> tuple[str, int]:
    """One job through every stage, its trainer sending a metrics event (a heartbeat) every
    half hour of `trained_for`, in simulated time; how it ended and its history's length."""
    job = new_job(platform)
    first = sfn.visits["RunStage"]  # RunStage invocations of earlier jobs in this test

    def prepared() -> None:
        write_prepared(platform, job)
        trainer_says(job.job_id, TrainerPhase.DONE, stage=TrainerStage.PREPARE)

    sfn.after("RunStage", first, prepared)
    sfn.after(
        "RunStage",
        first + 2,
        lambda: trainer_says(job.job_id, TrainerPhase.DONE, stage=TrainerStage.FINALIZE),
    )
    StepFunctionsOrchestrator(f"{arn}#HappyPathCachedImage").start(job)

    wait_for_stage(platform, job.job_id, TrainerStage.TRAIN)
    trainer_says(job.job_id, TrainerPhase.TRAINING)
    start, steps = utcnow(), int(trained_for / METRICS_EVERY)
    for step in range(1, steps + 1):
        metrics = MetricsDetail(
            step=step, max_steps=steps, epoch=step / steps, progress=step / steps
        )
        event = make_event(job.job_id, metrics, time=start + step * METRICS_EVERY)
        ingest.handler(eventbridge_event(event))
    write_model(platform, job)
    trainer_says(job.job_id, TrainerPhase.DONE)

    client = boto3.client("stepfunctions")
    outcome = wait_for(client, execution_arn(arn, job.job_id))
    stored = platform.jobs.get(job.job_id)
    assert outcome.status == "SUCCEEDED", (outcome.path, stored and stored.error)
    return outcome.status, len(history(client, execution_arn(arn, job.job_id)))


def test_given_a_thirty_day_job_when_it_runs_then_its_history_is_as_long_as_a_short_job_s(
    platform: Platform, sfn: MockedStepFunctions, state_machine_arn: str
) -> None:
    push_image(TAG)

    short = run_job(platform, sfn, state_machine_arn, trained_for=timedelta(0))
    month = run_job(platform, sfn, state_machine_arn, trained_for=timedelta(days=DAYS))

    assert month == short
    assert month[0] == "SUCCEEDED" and month[1] < 100
